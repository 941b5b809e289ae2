/// What a lab link does to the packets it sends: delay, jitter and random loss (the kernel's netem qdisc)
/// and/or a rate limit (tbf). nil fields are not impaired; an impairment with every field nil is none.
/// Applied with `NetlinkSocket.setImpairment(_:on:)`, which acts on the link's egress only. (The
/// same idea applied by a port itself, where the kernel has no netem, is `VSwitchCore.Impairment`.)
public struct QdiscImpairment: Sendable, Equatable, CustomStringConvertible {
    /// Added one-way delay, in microseconds (at most `maximumDelayMicroseconds`).
    public var delayMicroseconds: UInt32?
    /// Random variation of the delay (+/-), in microseconds; requires a delay.
    public var jitterMicroseconds: UInt32?
    /// Probability that a packet is dropped, in percent, 0...100.
    public var lossPercent: Double?
    /// Egress rate limit in bytes per second (1 Mbit/s is 125_000), at most `maximumRateBytesPerSecond`.
    public var rateBytesPerSecond: UInt64?

    /// Delays and jitters beyond this are refused (libnl converts them to 32-bit scheduler ticks).
    public static let maximumDelayMicroseconds: UInt32 = 100_000_000
    /// libnl 3.7 takes the tbf rate as a C int of bytes per second (about 17 Gbit/s).
    public static let maximumRateBytesPerSecond: UInt64 = UInt64(Int32.max)

    public init(delayMicroseconds: UInt32? = nil, jitterMicroseconds: UInt32? = nil, lossPercent: Double? = nil,
                rateBytesPerSecond: UInt64? = nil) {
        self.delayMicroseconds = delayMicroseconds
        self.jitterMicroseconds = jitterMicroseconds
        self.lossPercent = lossPercent
        self.rateBytesPerSecond = rateBytesPerSecond
    }

    /// True when nothing is impaired.
    public var isEmpty: Bool {
        delayMicroseconds == nil && jitterMicroseconds == nil && lossPercent == nil && rateBytesPerSecond == nil
    }

    /// As tc would say it: "delay 20ms, jitter 5ms, loss 10%, rate 1mbit"; "none" when empty.
    public var description: String {
        var parts: [String] = []
        if let delayMicroseconds { parts.append("delay \(Self.format(microseconds: delayMicroseconds))") }
        if let jitterMicroseconds { parts.append("jitter \(Self.format(microseconds: jitterMicroseconds))") }
        if let lossPercent { parts.append("loss \(Self.format(number: lossPercent))%") }
        if let rateBytesPerSecond { parts.append("rate \(Self.format(bytesPerSecond: rateBytesPerSecond))") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// Why this impairment cannot be applied, or nil when it can.
    public var validationError: String? {
        if let lossPercent, !(0...100).contains(lossPercent) {
            return "loss must be between 0 and 100 percent, not \(Self.format(number: lossPercent))"
        }
        if jitterMicroseconds != nil, delayMicroseconds == nil {
            return "jitter requires a delay"
        }
        if let delayMicroseconds, delayMicroseconds > Self.maximumDelayMicroseconds {
            return "delay must be at most \(Self.format(microseconds: Self.maximumDelayMicroseconds))"
        }
        if let jitterMicroseconds, jitterMicroseconds > Self.maximumDelayMicroseconds {
            return "jitter must be at most \(Self.format(microseconds: Self.maximumDelayMicroseconds))"
        }
        if let rateBytesPerSecond, rateBytesPerSecond == 0 || rateBytesPerSecond > Self.maximumRateBytesPerSecond {
            return "rate must be 1 to \(Self.maximumRateBytesPerSecond) bytes per second"
        }
        return nil
    }

    // MARK: - Formatting

    static func format(microseconds: UInt32) -> String {
        if microseconds % 1_000_000 == 0, microseconds > 0 { return "\(microseconds / 1_000_000)s" }
        if microseconds % 1000 == 0 { return "\(microseconds / 1000)ms" }
        if microseconds > 1000 { return "\(format(number: Double(microseconds) / 1000))ms" }
        return "\(microseconds)us"
    }

    /// 10 -> "10", 0.5 -> "0.5".
    static func format(number: Double) -> String {
        if number.isFinite, number == number.rounded(), abs(number) < 1e15 { return String(Int64(number)) }
        return String(number)
    }

    /// In bits per second with tc's units: 125_000 -> "1mbit", 1000 -> "8kbit", 3 -> "24bit".
    static func format(bytesPerSecond: UInt64) -> String {
        let (bits, overflow) = bytesPerSecond.multipliedReportingOverflow(by: 8)
        if overflow { return "\(bytesPerSecond)Bps" }
        for (unit, scale) in [("gbit", UInt64(1_000_000_000)), ("mbit", 1_000_000), ("kbit", 1000)]
            where bits >= scale && bits % scale == 0 {
            return "\(bits / scale)\(unit)"
        }
        return "\(bits)bit"
    }
}
