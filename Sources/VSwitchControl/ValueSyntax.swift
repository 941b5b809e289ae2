#if canImport(Glibc)
import Glibc
#endif

/// Strict parsers for the values of a lab file. Each returns nil for anything it does not take whole.
/// The syntax of values in lab files and `set`/`set-port`: addresses, MACs, booleans,
/// durations, percentages and rates. Shared by vswitchctl's lab files and vswitchd.
public enum ValueSyntax {
    public enum Family: Equatable { case ipv4, ipv6 }

    /// An address without prefix length ("198.18.0.1", "2001:2::1"): its family and bytes.
    public static func address(_ text: String) -> (family: Family, bytes: [UInt8])? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else { return nil }
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            return (.ipv6, withUnsafeBytes(of: &raw) { Array($0) })
        }
        var raw = in_addr()
        guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
        return (.ipv4, withUnsafeBytes(of: &raw) { Array($0) })
    }

    /// "198.18.0.1/24", "2001:2::1/64": address, family, prefix length (0-32 or 0-128).
    public static func cidr(_ text: String) -> (family: Family, bytes: [UInt8], prefix: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let (family, bytes) = address(String(parts[0])),
              let prefix = wholeNumber(String(parts[1])), prefix <= (family == .ipv4 ? 32 : 128) else { return nil }
        return (family, bytes, prefix)
    }

    /// Whether the bits after `prefix` are all zero (a network, as a route destination must be).
    public static func hostBitsAreZero(_ bytes: [UInt8], prefix: Int) -> Bool {
        for (i, byte) in bytes.enumerated() {
            let bitsKept = max(0, min(8, prefix - i * 8))
            let mask: UInt8 = bitsKept == 8 ? 0xff : ~(0xff >> UInt8(bitsKept))
            if byte & ~mask != 0 { return false }
        }
        return true
    }

    /// Decimal digits only, no sign, no leading zero (so "010" is not mistaken for octal); nil past Int.max.
    public static func wholeNumber(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy(isDigit), bytes.count == 1 || bytes[0] != 48 else {
            return nil
        }
        return Int(text)
    }

    /// A unicast, non-zero MAC "02:00:00:00:00:01" (either case), lowercased.
    public static func unicastMAC(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var octets: [UInt8] = []
        for part in parts {
            guard part.utf8.count == 2, part.utf8.allSatisfy(isHexDigit), let octet = UInt8(part, radix: 16) else {
                return nil
            }
            octets.append(octet)
        }
        guard octets[0] & 1 == 0, octets.contains(where: { $0 != 0 }) else { return nil }
        return text.lowercased()
    }

    /// on/off, true/false, yes/no.
    public static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "on", "true", "yes": true
        case "off", "false", "no": false
        default: nil
        }
    }

    /// A non-negative decimal "12", "0.5": its digits without the point and the number of fraction digits.
    private static func decimal(_ text: Substring) -> (mantissa: UInt64, fractionDigits: Int)? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isDigit) }) else {
            return nil
        }
        let digits = parts.joined()
        guard digits.utf8.count <= 18, let mantissa = UInt64(digits) else { return nil }
        return (mantissa, parts.count == 2 ? parts[1].utf8.count : 0)
    }

    /// `mantissa / 10^fractionDigits * multiplier / divisor` as quotient and remainder; nil if it overflows.
    private static func scaled(_ value: (mantissa: UInt64, fractionDigits: Int), by multiplier: UInt64,
                               dividedBy divisor: UInt64 = 1) -> (quotient: UInt64, remainder: UInt64)? {
        var denominator: UInt64 = divisor
        for _ in 0..<value.fractionDigits {
            let (d, overflow) = denominator.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            denominator = d
        }
        let product = value.mantissa.multipliedFullWidth(by: multiplier)
        guard product.high < denominator else { return nil }
        let (quotient, remainder) = denominator.dividingFullWidth((product.high, product.low))
        return (quotient, remainder)
    }

    public enum DurationProblem: Error { case syntax, notWhole, tooLarge }

    /// "20ms", "500us", "1s", "1.5ms": microseconds.
    public static func duration(_ text: String) -> Result<UInt32, DurationProblem> {
        let units: [(String, UInt64)] = [("us", 1), ("ms", 1_000), ("s", 1_000_000)]
        guard let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }),
              let value = decimal(text.dropLast(suffix.count)) else { return .failure(.syntax) }
        guard let micros = scaled(value, by: scale), micros.quotient <= UInt64(UInt32.max) else {
            return .failure(.tooLarge)
        }
        guard micros.remainder == 0 else { return .failure(.notWhole) }
        return .success(UInt32(micros.quotient))
    }

    /// "10%", "10", "0.5%": a percentage (range not checked).
    public static func percent(_ text: String) -> Double? {
        let number = text.hasSuffix("%") ? text.dropLast() : Substring(text)
        guard decimal(number) != nil else { return nil }
        return Double(number)
    }

    public enum RateProblem: Error { case syntax, zero, tooLarge }

    /// "100mbit", "1.5gbit", "64kbps", "1000bit": bytes per second (SI multipliers, bits divided by 8 and
    /// rounded down; "bps" is bytes, as in tc). Units are case-insensitive.
    public static func rate(_ text: String) -> Result<UInt64, RateProblem> {
        let lower = text.lowercased()
        let kinds: [(String, UInt64)] = [("bit", 8), ("bps", 1)]
        guard let (suffix, divisor) = kinds.first(where: { lower.hasSuffix($0.0) }) else { return .failure(.syntax) }
        var number = lower.dropLast(suffix.count)
        var multiplier: UInt64 = 1
        switch number.last {
        case "k": multiplier = 1_000
        case "m": multiplier = 1_000_000
        case "g": multiplier = 1_000_000_000
        default: break
        }
        if multiplier != 1 { number = number.dropLast() }
        guard let value = decimal(number) else { return .failure(.syntax) }
        guard let bytes = scaled(value, by: multiplier, dividedBy: divisor) else { return .failure(.tooLarge) }
        return bytes.quotient == 0 ? .failure(.zero) : .success(bytes.quotient)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 48 && b <= 57 }
    private static func isHexDigit(_ b: UInt8) -> Bool {
        isDigit(b) || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }

    /// A list of VLANs like `10,20,30-39` (each 1-4094), sorted and without repeats; nil if malformed.
    public static func vlanList(_ text: String) -> [UInt16]? {
        var out = Set<UInt16>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = UInt16(bounds[0]), let high = UInt16(bounds.last!),
                  (1...4094).contains(low), (1...4094).contains(high), low <= high else { return nil }
            for v in low...high { out.insert(v) }
        }
        return out.sorted()
    }
}
