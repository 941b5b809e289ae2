/// The Rapid Spanning Tree Protocol (IEEE 802.1D-2004 clause 17, which absorbed 802.1w), with
/// its protocol migration to 802.1D (1998) configuration and TCN BPDUs on a port where a legacy
/// bridge is heard (the Linux kernel bridge speaks only those).
///
/// One `SpanningTree` per switch, owned by the switch's data-plane thread. It never touches a
/// frame of the data path: the switch hands it the BPDUs it receives (`receive`), ticks it once a
/// second (`tick`), tells it when a port's link comes and goes (`setEnabled`), and after each
/// call reads back what it decided: each port's forwarding state (`state(of:)`), the ports whose
/// learned MACs must go (`takeFlushes`), and the BPDUs to send (`takeTransmits`).
///
/// The state machines are those of the standard, one function each, with the standard's state
/// and variable names so that the code reads against 17.21-17.31: Port Receive, Port Protocol
/// Migration, Bridge Detection, Port Information, Port Role Selection, Port Role Transitions, Port
/// State Transition, Topology Change and Port Transmit (SpanningTree+Machines.swift). After every
/// event they run until none of them moves.
///
/// Not implemented: MSTP (an MST BPDU is read for its CIST part, as 802.1Q asks of an RSTP
/// bridge), and the Port Timers' per-port `tick` (all ports tick together, once a second).
public final class SpanningTree {
    // MARK: - Parameters

    /// Bridge parameters (`set BR stp-priority=... stp-hello-time=...`), IEEE defaults.
    public struct Parameters: Equatable, Sendable {
        /// Bridge priority, 0-61440 in steps of 4096 (the high 4 bits of the bridge identifier).
        public var priority: UInt16 = 32768
        /// Seconds between BPDUs on a designated port (1-10; the standard fixes 2).
        public var helloTime: UInt16 = 2
        /// Seconds received information lives without being refreshed, as a hop limit (6-40).
        public var maxAge: UInt16 = 20
        /// Seconds in each of discarding and learning toward a legacy bridge (4-30).
        public var forwardDelay: UInt16 = 15
        /// 2 runs RSTP; 0 sends only 802.1D BPDUs on every port (STP-compatible).
        public var forceVersion: UInt8 = 2
        /// BPDUs a port may send per second beyond its hellos.
        public var transmitHoldCount: UInt16 = 6
        public init() {}

        /// Whether the times satisfy 802.1D's 2 x (forward delay - 1) >= max age >= 2 x (hello + 1).
        public var timesAreConsistent: Bool {
            2 * (Int(forwardDelay) - 1) >= Int(maxAge) && Int(maxAge) >= 2 * (Int(helloTime) + 1)
        }
    }

    /// Port parameters (`set-port BR PORT stp-cost=... stp-port-priority=... stp-edge=...`).
    public struct PortParameters: Equatable, Sendable {
        /// The port's path cost (1-200,000,000); 802.1D-2004's recommendation for 1 Gbit/s is 20,000.
        public var pathCost: UInt32 = 20_000
        /// Port priority, 0-240 in steps of 16 (the high 4 bits of the port identifier).
        public var priority: UInt8 = 128
        /// AdminEdge: the port starts as an edge port (a host, never a bridge), forwarding at once.
        public var adminEdge = false
        /// AutoEdge: a port that hears no BPDU within the migrate time becomes an edge port.
        public var autoEdge = true
        /// operPointToPointMAC: the port reaches at most one other bridge (proposal/agreement is
        /// allowed); false for a shared segment, such as a multipoint tunnel.
        public var pointToPoint = true
        /// Whether BPDUs may be sent on the port (false for ports that carry only IP, such as TUN;
        /// such a port acts as an edge port).
        public var sendsBPDUs = true
        public init() {}
    }

    // MARK: - Public types

    public enum Role: UInt8, Sendable, CaseIterable {
        case disabled, root, designated, alternate, backup
        public var name: String {
            switch self {
            case .disabled: "disabled"
            case .root: "root"
            case .designated: "designated"
            case .alternate: "alternate"
            case .backup: "backup"
            }
        }
    }

    /// What the switch does with a port's frames. Raw values are those of `LearningSwitch`'s
    /// per-port state byte (0 forwards, so a switch without STP pays nothing).
    public enum ForwardingState: UInt8, Sendable {
        case forwarding = 0, learning = 1, discarding = 2
        public var name: String {
            switch self {
            case .forwarding: "forwarding"
            case .learning: "learning"
            case .discarding: "discarding"
            }
        }
    }

    /// A priority vector (17.5-17.6): lower is better, compared field by field.
    public struct PriorityVector: Equatable, Comparable, Sendable {
        public var rootBridge: UInt64
        public var rootPathCost: UInt32
        public var designatedBridge: UInt64
        public var designatedPort: UInt16
        /// The port the vector was received on (or is for): the last tie-breaker.
        public var bridgePort: UInt16

        public init(rootBridge: UInt64, rootPathCost: UInt32, designatedBridge: UInt64, designatedPort: UInt16, bridgePort: UInt16) {
            self.rootBridge = rootBridge; self.rootPathCost = rootPathCost; self.designatedBridge = designatedBridge
            self.designatedPort = designatedPort; self.bridgePort = bridgePort
        }

        public static func < (a: Self, b: Self) -> Bool {
            (a.rootBridge, a.rootPathCost, a.designatedBridge, a.designatedPort, a.bridgePort)
                < (b.rootBridge, b.rootPathCost, b.designatedBridge, b.designatedPort, b.bridgePort)
        }

        /// 17.6: better, or sent by the same designated port (same bridge address and port
        /// number, whatever their priorities), which may replace what it said before.
        func isSuperior(to other: Self) -> Bool {
            self < other || (designatedBridge & SpanningTree.addressMask == other.designatedBridge & SpanningTree.addressMask
                && designatedPort & 0x0FFF == other.designatedPort & 0x0FFF)
        }
    }

    /// Timer values carried in BPDUs, in whole seconds.
    public struct Times: Equatable, Sendable {
        public var messageAge: UInt16
        public var maxAge: UInt16
        public var helloTime: UInt16
        public var forwardDelay: UInt16
        public init(messageAge: UInt16, maxAge: UInt16, helloTime: UInt16, forwardDelay: UInt16) {
            self.messageAge = messageAge; self.maxAge = maxAge; self.helloTime = helloTime; self.forwardDelay = forwardDelay
        }
    }

    /// A decoded BPDU (configuration, TCN or RST; an MST BPDU reads as RST).
    public struct BPDU: Equatable, Sendable {
        public enum Kind: Equatable, Sendable { case config, tcn, rst }
        public var kind: Kind
        public var flags: UInt8
        public var vector: PriorityVector
        public var times: Times
        public init(kind: Kind, flags: UInt8, vector: PriorityVector, times: Times) {
            self.kind = kind; self.flags = flags; self.vector = vector; self.times = times
        }
    }

    /// What `stp show` prints for the bridge.
    public struct Status: Sendable {
        public var bridgeID: UInt64
        public var rootID: UInt64
        public var rootPathCost: UInt32
        /// The root port's number, nil when this bridge is the root.
        public var rootPort: PortNumber?
        public var parameters: Parameters
        /// The times in use: the root's (learned through the root port) or this bridge's own.
        public var rootTimes: Times
        public var topologyChanges: UInt64
        /// Seconds since the last topology change, nil if there was none.
        public var sinceTopologyChange: UInt64?
        public var ports: [PortStatus]
    }

    public struct PortStatus: Sendable {
        public var number: PortNumber
        public var portID: UInt16
        public var parameters: PortParameters
        public var role: Role
        public var state: ForwardingState
        public var enabled: Bool
        public var edge: Bool
        /// Whether the port sends RST BPDUs (false: 802.1D BPDUs, toward a legacy bridge).
        public var rstp: Bool
        /// The designated bridge and port for the port's segment.
        public var designatedBridge: UInt64
        public var designatedPort: UInt16
        public var designatedCost: UInt32
        public var bpdusReceived: UInt64
        public var bpdusSent: UInt64
        /// BPDUs dropped as invalid (truncated, bad LLC or protocol, message age past max age).
        public var bpdusInvalid: UInt64
    }

    // MARK: - State

    static let addressMask: UInt64 = 0xFFFF_FFFF_FFFF
    /// MigrateTime (17.13.9), seconds.
    static let migrateTime: UInt16 = 3

    /// The bridge's MAC address (the low 48 bits of its identifier), also the BPDUs' source.
    public let address: UInt64
    public private(set) var parameters: Parameters
    var bridgeID: UInt64 { UInt64(parameters.priority) << 48 | address }
    var bridgeTimes: Times {
        Times(messageAge: 0, maxAge: parameters.maxAge, helloTime: parameters.helloTime, forwardDelay: parameters.forwardDelay)
    }
    var rstpVersion: Bool { parameters.forceVersion >= 2 }

    var ports: [PortData] = []
    var rootPriority: PriorityVector
    var rootPortID: UInt16 = 0
    var rootTimes: Times
    var prsState: PRS = .initBridge
    var seconds: UInt64 = 0
    public internal(set) var topologyChanges: UInt64 = 0
    var lastTopologyChange: UInt64?

    // Outputs, drained by the switch after each call.
    var transmits: [(PortNumber, [UInt8])] = []
    var flushes: [PortNumber] = []

    public init(address: UInt64, parameters: Parameters = Parameters()) {
        self.address = address & Self.addressMask
        self.parameters = parameters
        let id = UInt64(parameters.priority) << 48 | address & Self.addressMask
        rootPriority = PriorityVector(rootBridge: id, rootPathCost: 0, designatedBridge: id, designatedPort: 0, bridgePort: 0)
        rootTimes = Times(messageAge: 0, maxAge: parameters.maxAge, helloTime: parameters.helloTime, forwardDelay: parameters.forwardDelay)
        run()
    }

    // MARK: - Events

    /// Adds port `number` (disabled until `setEnabled`).
    public func addPort(_ number: PortNumber, parameters: PortParameters = PortParameters()) {
        guard port(number) == nil else { return }
        let p = PortData(number: number, parameters: parameters, times: bridgeTimes)
        ports.append(p)
        ports.sort { $0.number < $1.number }
        begin(p)
        run()
    }

    public func removePort(_ number: PortNumber) {
        guard let p = port(number) else { return }
        ports.removeAll { $0 === p }
        // The bridge loses what the port told it: choose again.
        for q in ports { q.reselect = true; q.selected = false }
        run()
    }

    /// Changes a port's parameters; a new cost or priority makes the bridge choose roles again.
    public func setPortParameters(_ number: PortNumber, _ new: PortParameters) {
        guard let p = port(number), p.parameters != new else { return }
        let edgeChanged = p.parameters.adminEdge != new.adminEdge || p.parameters.sendsBPDUs != new.sendsBPDUs
        p.parameters = new
        p.id = Self.portID(number: number, priority: new.priority)
        if edgeChanged { p.bdm = p.adminEdge ? .edge : .notEdge; p.operEdge = p.adminEdge }
        p.reselect = true; p.selected = false
        run()
    }

    /// Changes the bridge parameters. A new priority or new times make the bridge choose roles
    /// again (17.13: as on a management change, without stopping ports that keep their role); a new
    /// protocol version begins every port again, as after BEGIN.
    public func setParameters(_ new: Parameters) {
        guard new != parameters else { return }
        let versionChanged = new.forceVersion != parameters.forceVersion
        parameters = new
        if versionChanged {
            rootTimes = bridgeTimes
            prsState = .initBridge
            for p in ports { begin(p) }
        } else {
            for p in ports { p.reselect = true; p.selected = false }
        }
        run()
    }

    /// The port's MAC-layer link went up or down (portEnabled).
    public func setEnabled(_ number: PortNumber, _ enabled: Bool) {
        guard let p = port(number), p.portEnabled != enabled else { return }
        p.portEnabled = enabled
        run()
    }

    public func isEnabled(_ number: PortNumber) -> Bool { port(number)?.portEnabled ?? false }

    /// Makes the port check again whether its neighbour speaks RSTP (mcheck).
    public func migrationCheck(_ number: PortNumber) {
        guard let p = port(number), rstpVersion else { return }
        p.mcheck = true
        run()
    }

    /// One second has passed.
    public func tick() {
        seconds &+= 1
        for p in ports {
            dec(&p.helloWhen); dec(&p.tcWhile); dec(&p.fdWhile); dec(&p.rcvdInfoWhile); dec(&p.rrWhile)
            dec(&p.rbWhile); dec(&p.mdelayWhile); dec(&p.edgeDelayWhile); dec(&p.txCount)
        }
        run()
    }

    /// A frame sent to 01:80:c2:00:00:00 arrived on port `number`: `frame` from its Ethernet
    /// header on. Invalid BPDUs are counted and ignored.
    public func receive(frame: UnsafeRawBufferPointer, on number: PortNumber) {
        guard let p = port(number) else { return }
        guard let bpdu = Self.decode(frame) else { p.invalidBPDUs &+= 1; return }
        p.receivedBPDUs &+= 1
        guard p.portEnabled, p.parameters.sendsBPDUs else { return }
        // Our own BPDU come back on the port that sent it (a looped cable, a hub, a multipoint
        // tunnel reflecting): 802.1D 9.3.4 discards it.
        if bpdu.kind != .tcn, bpdu.vector.designatedBridge & Self.addressMask == address, bpdu.vector.designatedPort & 0x0FFF == p.id & 0x0FFF {
            return
        }
        p.bpdu = bpdu
        p.rcvdBPDU = true
        // setTcFlags for a TCN BPDU (rcvInfo calls it OtherInfo, which records no flags).
        if bpdu.kind == .tcn { p.rcvdTcn = true }
        run()
    }

    // MARK: - Outputs

    public func state(of number: PortNumber) -> ForwardingState {
        guard let p = port(number) else { return .discarding }
        return p.forwarding ? .forwarding : p.learning ? .learning : .discarding
    }

    public func role(of number: PortNumber) -> Role { port(number)?.role ?? .disabled }

    /// Ports whose learned MACs must be flushed (a topology change), since the last call.
    public func takeFlushes() -> [PortNumber] {
        defer { flushes.removeAll(keepingCapacity: true) }
        return flushes
    }

    /// Frames to send (whole Ethernet frames, padded to 60 bytes), since the last call.
    public func takeTransmits() -> [(PortNumber, [UInt8])] {
        defer { transmits.removeAll(keepingCapacity: true) }
        return transmits
    }

    public var hasOutput: Bool { !transmits.isEmpty || !flushes.isEmpty }

    public var status: Status {
        let root = ports.first { $0.role == .root }
        return Status(bridgeID: bridgeID, rootID: rootPriority.rootBridge, rootPathCost: rootPriority.rootPathCost,
                      rootPort: root?.number, parameters: parameters, rootTimes: rootTimes,
                      topologyChanges: topologyChanges, sinceTopologyChange: lastTopologyChange.map { seconds &- $0 },
                      ports: ports.map { p in
                          PortStatus(number: p.number, portID: p.id, parameters: p.parameters, role: p.role, state: state(of: p.number),
                                     enabled: p.portEnabled, edge: p.operEdge, rstp: p.sendRSTP,
                                     designatedBridge: p.portPriority.designatedBridge, designatedPort: p.portPriority.designatedPort,
                                     designatedCost: p.portPriority.rootPathCost,
                                     bpdusReceived: p.receivedBPDUs, bpdusSent: p.sentBPDUs, bpdusInvalid: p.invalidBPDUs)
                      })
    }

    // MARK: - Helpers

    func port(_ number: PortNumber) -> PortData? { ports.first { $0.number == number } }

    /// A port identifier: 4 bits of priority, 12 bits of port number (1-4095; port numbers are
    /// 0-based, identifiers 1-based).
    static func portID(number: PortNumber, priority: UInt8) -> UInt16 {
        UInt16(priority >> 4) << 12 | UInt16(truncatingIfNeeded: number + 1) & 0x0FFF
    }

    @inline(__always) func dec(_ t: inout UInt16) { if t > 0 { t -= 1 } }
}

// MARK: - BPDU encoding (802.1D-2004 clause 9)

extension SpanningTree {
    /// The Bridge Group Address, 01:80:c2:00:00:00, as the switch's 48-bit MAC integers.
    public static let groupAddress: UInt64 = 0x0180_C200_0000

    enum Flag {
        static let topologyChange: UInt8 = 0x01
        static let proposal: UInt8 = 0x02
        static let roleShift: UInt8 = 2
        static let learning: UInt8 = 0x10
        static let forwarding: UInt8 = 0x20
        static let agreement: UInt8 = 0x40
        static let topologyChangeAck: UInt8 = 0x80
    }

    /// The role a received BPDU conveys: configuration BPDUs are always a designated port's.
    enum ConveyedRole { case unknown, alternateOrBackup, root, designated }

    static func conveyedRole(_ bpdu: BPDU) -> ConveyedRole {
        switch bpdu.kind {
        case .config: return .designated
        case .tcn: return .unknown
        case .rst:
            switch (bpdu.flags >> Flag.roleShift) & 3 {
            case 1: return .alternateOrBackup
            case 2: return .root
            case 3: return .designated
            default: return .unknown
            }
        }
    }

    /// Decodes a BPDU from an Ethernet frame (802.3 length, LLC 42 42 03), validating it as
    /// 9.3.4 asks. Nil for anything else; never reads past `frame`.
    public static func decode(_ frame: UnsafeRawBufferPointer) -> BPDU? {
        guard frame.count >= 14 + 3 + 4 else { return nil }
        let b = frame
        let length = Int(b[12]) << 8 | Int(b[13])
        // An 802.3 length field (not an EtherType), covering at least the LLC and a TCN.
        guard length >= 7, length <= 1500, b[14] == 0x42, b[15] == 0x42, b[16] == 0x03 else { return nil }
        let available = min(length - 3, b.count - 17)
        guard available >= 4, b[17] == 0, b[18] == 0 else { return nil }
        let version = b[19], type = b[20]
        func u16(_ o: Int) -> UInt16 { UInt16(b[17 + o]) << 8 | UInt16(b[18 + o]) }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) << 16 | UInt32(u16(o + 2)) }
        func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) << 32 | UInt64(u32(o + 4)) }
        let zero = PriorityVector(rootBridge: 0, rootPathCost: 0, designatedBridge: 0, designatedPort: 0, bridgePort: 0)
        switch type {
        case 0x80:
            return BPDU(kind: .tcn, flags: 0, vector: zero, times: Times(messageAge: 0, maxAge: 0, helloTime: 0, forwardDelay: 0))
        case 0x00, 0x02:
            let kind: BPDU.Kind
            if type == 0x02 {
                // An RST BPDU (or MST, version 3: its first 36 bytes are the CIST's RST BPDU).
                guard version >= 2, available >= 36 else { return nil }
                kind = .rst
            } else {
                guard available >= 35 else { return nil }
                kind = .config
            }
            let vector = PriorityVector(rootBridge: u64(5), rootPathCost: u32(13), designatedBridge: u64(17),
                                        designatedPort: u16(25), bridgePort: 0)
            let age = u16(27), maxAge = u16(29)
            // 9.3.4: a configuration BPDU whose message age reached max age is invalid.
            guard age < maxAge else { return nil }
            func seconds(_ v: UInt16) -> UInt16 { UInt16((UInt32(v) + 128) / 256) }
            let times = Times(messageAge: seconds(age), maxAge: seconds(maxAge), helloTime: max(1, seconds(u16(31))),
                              forwardDelay: seconds(u16(33)))
            return BPDU(kind: kind, flags: b[21], vector: vector, times: times)
        default:
            return nil
        }
    }

    /// Encodes a BPDU as a whole Ethernet frame from `source`, padded to the 60-byte minimum.
    public static func encode(_ bpdu: BPDU, source: UInt64) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 60)
        func put16(_ v: UInt16, _ o: Int) { f[o] = UInt8(v >> 8); f[o + 1] = UInt8(truncatingIfNeeded: v) }
        func put32(_ v: UInt32, _ o: Int) { put16(UInt16(v >> 16), o); put16(UInt16(truncatingIfNeeded: v), o + 2) }
        func put64(_ v: UInt64, _ o: Int) { put32(UInt32(v >> 32), o); put32(UInt32(truncatingIfNeeded: v), o + 4) }
        for i in 0..<6 {
            f[i] = UInt8(truncatingIfNeeded: groupAddress >> (40 - 8 * UInt64(i)))
            f[6 + i] = UInt8(truncatingIfNeeded: source >> (40 - 8 * UInt64(i)))
        }
        let bpduLength: Int
        switch bpdu.kind {
        case .tcn: bpduLength = 4
        case .config: bpduLength = 35
        case .rst: bpduLength = 36
        }
        put16(UInt16(3 + bpduLength), 12)
        f[14] = 0x42; f[15] = 0x42; f[16] = 0x03
        // Protocol identifier 0 (bytes 17-18), version, type.
        f[19] = bpdu.kind == .rst ? 2 : 0
        f[20] = bpdu.kind == .tcn ? 0x80 : bpdu.kind == .rst ? 0x02 : 0x00
        guard bpdu.kind != .tcn else { return f }
        f[21] = bpdu.flags
        put64(bpdu.vector.rootBridge, 22)
        put32(bpdu.vector.rootPathCost, 30)
        put64(bpdu.vector.designatedBridge, 34)
        put16(bpdu.vector.designatedPort, 42)
        put16(bpdu.times.messageAge &* 256, 44)
        put16(bpdu.times.maxAge &* 256, 46)
        put16(bpdu.times.helloTime &* 256, 48)
        put16(bpdu.times.forwardDelay &* 256, 50)
        // RST: Version 1 Length 0 at byte 52 (already zero).
        return f
    }
}
