/// A learning Ethernet switch over batched ports.
///
/// For each frame of a batch (the life of a frame, Docs/architecture.md): check it is at least
/// an Ethernet header and that an 802.1Q tag is whole; drop invalid (multicast or zero) sources;
/// keep frames for reserved link-local groups (BPDUs) for the switch itself; learn the source on
/// the ingress port; send known unicast to its port, flood unknown unicast, broadcast and
/// multicast to every other port; never back out of the ingress port. Each frame is only queued
/// here (its index appended to the egress ports' transmit queues); `flush()` then hands every port
/// its queue in one call.
///
/// The decision is one loop, `forward` (LearningSwitch+Forwarding.swift), specialised for the
/// ingress port's policy. Per-port state is one `PortTable`; everything the loop touches sits
/// behind pointers copied into locals once per batch, so the loop has no bounds checks, no
/// reference counting and no allocation (see the allocation and callgrind checks in Tools/bench).
public final class LearningSwitch {
    /// Most ports per switch; port numbers are 0 ..< maxPorts.
    public static let maxPorts = 1024
    /// Largest frame accepted (a 64 KiB TSO superframe plus its Ethernet and 802.1Q headers).
    public static let maxFrameLength = 65_535 + 18

    public struct Settings: Equatable, Sendable {
        /// Seconds an unrefreshed learned entry lives.
        public var ageingTime: UInt32 = 300
        public var maxMACs: Int = 65_536
        public var floodUnknown: Bool = true
        /// Forward through the dedicated two-port path when exactly two ports are attached
        /// (off only to measure the general path against it).
        public var twoPortPath: Bool = true
        public init() {}
    }

    /// Port behaviours set with `set-port`.
    public struct PortOptions: OptionSet, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// `learning=off`: source MACs seen on this port are not learned.
        public static let noLearning = PortOptions(rawValue: 1)
        /// `isolated=on`: frames between two isolated ports are dropped (private VLAN style);
        /// isolated ports still reach every non-isolated port.
        public static let isolated = PortOptions(rawValue: 2)
    }

    public let batchCapacity: Int
    public private(set) var settings: Settings {
        didSet { path.pointee.floodUnknown = settings.floodUnknown; path.pointee.twoPortPath = settings.twoPortPath }
    }
    public private(set) var table: MACTable {
        didSet { path.pointee.layout = table.layout; path.pointee.tableState = table.state }
    }

    /// What the packet path reads of the switch's mutable state, behind one pointer: reading a
    /// class's `var` costs a dynamic exclusivity check (about 100 instructions with its
    /// thread-local lookups), a pointer's pointee nothing.
    @usableFromInline struct PathState {
        @usableFromInline var floodUnknown: Bool
        @usableFromInline var twoPortPath: Bool
        /// How many attached ports have a VLAN mode: any makes the switch VLAN-aware.
        @usableFromInline var vlanPorts = 0
        /// How many ports are being captured.
        @usableFromInline var captureCount = 0
        @usableFromInline var layout: MACTable.Layout
        @usableFromInline var tableState: UnsafeMutablePointer<MACTable.State>
    }
    @usableFromInline let path: UnsafeMutablePointer<PathState>

    /// Per-port state: counters, options, VLANs, flood limits, spanning-tree states, transmit queues.
    @usableFromInline let ports: PortTable
    /// Attached ports, and those that flood.
    @usableFromInline let floodSet: FloodSet
    /// Per-batch scratch: frames' VLANs, deferred link-local frames.
    @usableFromInline let scratch: BatchScratch
    /// BPDUs of the current batch, for the spanning tree after it.
    @usableFromInline let inbox: BPDUInbox
    /// The port objects, by number (called once per batch and direction).
    @usableFromInline let devices: UnsafeMutablePointer<(any Port)?>
    /// Captures in progress, by port; `path.captureCount` says whether there are any (one test
    /// per batch when nobody captures).
    @usableFromInline let captures: UnsafeMutablePointer<CaptureRing?>

    // VLANs (LearningSwitch+VLAN.swift). Until a port has a VLAN mode, none of this is touched.
    /// How many attached ports have a VLAN mode: any makes the switch VLAN-aware.
    @usableFromInline var vlanPorts: Int {
        @inlinable get { path.pointee.vlanPorts }
        set { path.pointee.vlanPorts = newValue }
    }
    /// Frames retagged for one egress port at a time (allocated when the first VLAN mode is set).
    @usableFromInline var retagged: PacketBatch?

    // Spanning tree (LearningSwitch+SpanningTree.swift). Without it every port forwards.
    @usableFromInline var spanningTree: SpanningTree?
    /// A small batch for sending BPDUs (allocated when the spanning tree starts).
    var bpduBatch: PacketBatch?
    var spanningTreeClock: UInt64 = 0
    var spanningTreeParameters: [PortNumber: SpanningTree.PortParameters] = [:]
    /// Port state changes not yet taken by the control plane's log (`takeSpanningTreeEvents`);
    /// appended only when a state changes, and bounded.
    var spanningTreeEvents: [SpanningTreeEvent] = []

    public init(settings: Settings = Settings(), batchCapacity: Int = 64) {
        precondition(batchCapacity > 0 && batchCapacity <= Int(UInt16.max))
        self.settings = settings
        self.batchCapacity = batchCapacity
        let table = MACTable(limit: settings.maxMACs, portCount: Self.maxPorts)
        self.table = table
        path = .allocate(capacity: 1)
        path.initialize(to: PathState(floodUnknown: settings.floodUnknown, twoPortPath: settings.twoPortPath,
                                      layout: table.layout, tableState: table.state))
        ports = PortTable(capacity: Self.maxPorts, batchCapacity: batchCapacity)
        floodSet = FloodSet(capacity: Self.maxPorts)
        scratch = BatchScratch(batchCapacity: batchCapacity)
        inbox = BPDUInbox()
        devices = .allocate(capacity: Self.maxPorts)
        devices.initialize(repeating: nil, count: Self.maxPorts)
        captures = .allocate(capacity: Self.maxPorts)
        captures.initialize(repeating: nil, count: Self.maxPorts)
    }

    deinit {
        ports.deallocate()
        floodSet.deallocate()
        scratch.deallocate()
        inbox.deallocate()
        devices.deinitialize(count: Self.maxPorts)
        devices.deallocate()
        captures.deinitialize(count: Self.maxPorts)
        captures.deallocate()
        path.deallocate()
    }

    // MARK: - Ports (control path: called between batches)

    /// Attaches `port` and returns its number, or nil when the switch is full.
    public func attach(_ port: any Port) -> PortNumber? {
        guard let n = (0..<Self.maxPorts).first(where: { !ports.isAttached[$0] }) else { return nil }
        ports.reset(n)
        ports.isAttached[n] = true
        devices[n] = port
        floodSet.append(n)
        if let stp = spanningTree { addToSpanningTree(n, stp) } else { floodSet.rebuild(states: ports.forwardingStates) }
        return n
    }

    /// Detaches port `number`, forgetting its learned MACs and static entries. Returns the port.
    @discardableResult
    public func detach(_ number: PortNumber) -> (any Port)? {
        guard isValid(number) else { return nil }
        table.flush(port: number, includingStatic: true)
        table.setLimit(0, for: number)
        setVLAN(.none, tag: 0, members: [], for: number)
        ports.isAttached[number] = false
        if captures[number] != nil { setCapture(nil, for: number) }
        ports.reset(number)
        let port = devices[number]
        devices[number] = nil
        floodSet.remove(number)
        spanningTreeParameters[number] = nil
        if let stp = spanningTree {
            stp.removePort(number)
            applySpanningTree(stp, now: spanningTreeClock)
        }
        floodSet.rebuild(states: ports.forwardingStates)
        return port
    }

    /// Whether `number` is an attached port.
    func isValid(_ number: PortNumber) -> Bool {
        number >= 0 && number < Self.maxPorts && ports.isAttached[number]
    }

    public func port(_ number: PortNumber) -> (any Port)? {
        number >= 0 && number < Self.maxPorts ? devices[number] : nil
    }

    /// Starts copying port `number`'s frames (both directions) into `ring`, or stops with nil.
    public func setCapture(_ ring: CaptureRing?, for number: PortNumber) {
        guard number >= 0, number < Self.maxPorts else { return }
        captures[number] = ring
        path.pointee.captureCount = (0..<Self.maxPorts).reduce(0) { $0 + (captures[$1] == nil ? 0 : 1) }
    }

    public func capture(_ number: PortNumber) -> CaptureRing? {
        number >= 0 && number < Self.maxPorts ? captures[number] : nil
    }

    /// Sets port `number`'s options (between batches).
    public func setOptions(_ options: PortOptions, for number: PortNumber) {
        guard isValid(number) else { return }
        ports.options[number] = options.rawValue
    }

    /// Limits the frames port `number` may have flooded (broadcast, multicast and unknown unicast)
    /// to `framesPerSecond`, with a burst of one second's worth; 0 removes the limit.
    public func setFloodLimit(_ framesPerSecond: UInt64, for number: PortNumber) {
        guard isValid(number) else { return }
        ports.floodLimits[number] = FloodLimit()
        ports.floodLimits[number].rate = framesPerSecond
        ports.floodLimits[number].tokens = framesPerSecond
    }

    public func options(_ number: PortNumber) -> PortOptions {
        number >= 0 && number < Self.maxPorts ? PortOptions(rawValue: ports.options[number]) : []
    }

    /// Runs `body` with port `number`'s live counters (housekeeping: timed ports sending held frames).
    @inlinable
    public func withCounters<R>(_ number: PortNumber, _ body: (PortCounters) -> R) -> R {
        body(ports.counters(number))
    }

    public var attachedPorts: [PortNumber] { floodSet.attachedPorts }

    /// A copy of port `number`'s counters (the live ones stay with the data plane).
    public func counters(_ number: PortNumber) -> PortCounters? {
        guard isValid(number) else { return nil }
        return ports.counters(number).snapshot()
    }

    /// Applies new settings. A changed `maxMACs` rebuilds the table (keeping entries that fit).
    public func apply(_ new: Settings) {
        if new.maxMACs != settings.maxMACs {
            let old = table
            table = MACTable(limit: new.maxMACs, portCount: Self.maxPorts)
            for p in 0..<Self.maxPorts { table.setLimit(old.limit(for: p), for: p) }
            table.learned = old.learned; table.moved = old.moved; table.aged = old.aged; table.learnRefused = old.learnRefused
            for e in old.entries {
                let key = MACTable.key(mac: e.mac, vlan: e.vlan)
                if e.isStaticEntry { table.addStatic(key, port: e.portNumber) } else { table.learn(key, port: e.portNumber, now: e.lastSeenSeconds) }
            }
            table.learned = old.learned  // re-inserting is not learning
        }
        settings = new
    }

    // MARK: - Housekeeping

    /// Ages out entries; call about once a second.
    @discardableResult
    public func sweep(now nanoseconds: UInt64) -> Int {
        table.sweep(now: Self.seconds(nanoseconds), ageingTime: settings.ageingTime)
    }

    @inlinable @inline(__always)
    public static func seconds(_ nanoseconds: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: nanoseconds / 1_000_000_000) }

    // MARK: - The packet path

    /// Receives one batch from `ingress` and forwards it: `receive`, `process`, `flush`.
    @inlinable
    public func poll(_ ingress: PortNumber, batch: PacketBatch, now: UInt64) -> Int {
        guard let port = port(ingress) else { return 0 }
        batch.reset()
        let counters = ports.counters(ingress)
        port.receive(into: batch, counters: counters)
        let n = batch.count
        if n > 0 {
            if path.pointee.captureCount != 0, let ring = captures[ingress] { Self.copy(batch, all: n, into: ring, now: now) }
            process(batch, from: ingress, now: now)
            flush(batch, now: now)
            if inbox.count.pointee != 0 { receiveBPDUs(now: now) }
        }
        return n
    }

    /// Copies received frames into a capture.
    @usableFromInline
    static func copy(_ batch: PacketBatch, all count: Int, into ring: CaptureRing, now: UInt64) {
        for f in 0..<count {
            let b = batch.buffers[f]
            ring.append(b.frame, length: b.length, time: now)
        }
    }

    /// Copies the frames queued for a port into its capture.
    @usableFromInline
    static func copy(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, into ring: CaptureRing, now: UInt64) {
        for i in 0..<count {
            let b = batch.buffers[Int(indices[i])]
            ring.append(b.frame, length: b.length, time: now)
        }
    }

    /// Hands each port its queued frames, once per port. `now` stamps captured copies.
    @inlinable
    public func flush(_ batch: PacketBatch, now: UInt64 = 0) {
        if vlanPorts != 0 { return flushVLAN(batch, now: now) }
        let capturing = path.pointee.captureCount != 0
        let ports = self.ports, floodSet = self.floodSet
        for a in 0..<floodSet.attachedCount.pointee {
            let out = floodSet.attached[a]
            let count = ports.txCounts[out]
            if count == 0 { continue }
            ports.txCounts[out] = 0
            let counters = ports.counters(out)
            // Known unicast for a port the spanning tree keeps from forwarding.
            if ports.forwardingStates[out] != 0 { counters.drop(.stpBlocked, count: UInt64(count)); continue }
            if capturing, let ring = captures[out] { Self.copy(batch, indices: ports.queue(out), count: count, into: ring, now: now) }
            devices[out].unsafelyUnwrapped.transmit(batch, indices: ports.queue(out), count: count, counters: counters)
        }
    }
}
