/// A learning Ethernet switch over batched ports.
///
/// For each frame of a batch (the life of a frame, Docs/architecture.md): check it is at least
/// an Ethernet header and that an 802.1Q tag is whole; drop invalid (multicast or zero) sources;
/// learn the source on the ingress port; send known unicast to its port, flood unknown unicast,
/// broadcast and multicast to every other port; never back out of the ingress port. Each frame
/// is only queued here (its index appended to the egress ports' transmit queues); `flush()` then
/// hands every port its queue in one call.
///
/// Everything the per-frame loop touches sits behind unsafe pointers owned by this object, so the
/// loop has no bounds checks, no reference counting and no allocation (see the allocation and
/// callgrind checks in Tools/bench).
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


    public let batchCapacity: Int
    public private(set) var settings: Settings
    public private(set) var table: MACTable
    /// Per-port counters and attachment, indexed by port number.
    @usableFromInline let portCounters: UnsafeMutablePointer<PortCounters>
    @usableFromInline let isAttached: UnsafeMutablePointer<Bool>
    /// Per-port behaviour (`PortOptions` bits), read once per batch for the ingress port.
    @usableFromInline let portOptions: UnsafeMutablePointer<UInt8>
    /// Captures in progress, by port; `captureCount` says whether there are any (one pointer test
    /// per batch when nobody captures).
    @usableFromInline var captures: [CaptureRing?]
    @usableFromInline let captureCount: UnsafeMutablePointer<Int>
    /// Per-port rate limits for flooded (broadcast, multicast, unknown unicast) ingress frames.
    @usableFromInline let floodLimits: UnsafeMutablePointer<FloodLimit>

    /// A token bucket for one port's flooded ingress frames (`broadcast-limit=PPS`).
    @usableFromInline struct FloodLimit {
        /// Frames per second; 0 for no limit.
        @usableFromInline var rate: UInt64 = 0
        @usableFromInline var tokens: UInt64 = 0
        @usableFromInline var refilled: UInt64 = 0
        @inlinable init() {}

        /// Adds the tokens earned since the last refill, up to one second's worth (the burst).
        @inlinable mutating func refill(now: UInt64) {
            guard now > refilled else { return }
            let earned = (now - refilled) / 1_000_000 &* rate / 1000
            if earned > 0 || tokens >= rate {
                tokens = min(rate, tokens &+ earned)
                refilled = now
            }
        }
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
    /// Transmit queues: frame indices for port n at `txQueues[n * batchCapacity ..< + txCounts[n]]`.
    @usableFromInline let txQueues: UnsafeMutablePointer<UInt16>
    @usableFromInline let txCounts: UnsafeMutablePointer<Int>
    /// Attached port numbers, in attach order: the flood set. Its size is `attachedCount.pointee`
    /// (behind a pointer, like all per-frame state, so the packet path pays no exclusivity checks).
    @usableFromInline let attached: UnsafeMutablePointer<Int>
    @usableFromInline let attachedCount: UnsafeMutablePointer<Int>
    @usableFromInline var ports: [(any Port)?]

    // VLANs (LearningSwitch+VLAN.swift). Until a port has a VLAN mode, none of this is touched.
    /// Per-port VLAN mode and tag (access VLAN, or a trunk's native VLAN; 0 for none).
    @usableFromInline let vlanModes: UnsafeMutablePointer<VLANMode>
    @usableFromInline let vlanTags: UnsafeMutablePointer<UInt16>
    /// Per-port trunk membership: 4,096 bits (64 words) per port.
    @usableFromInline let vlanMembers: UnsafeMutablePointer<UInt64>
    /// How many attached ports have a VLAN mode: any makes the switch VLAN-aware.
    @usableFromInline var vlanPorts = 0
    /// Per frame of the batch being processed: its VLAN, with `VLANMode.taggedBit` if the frame
    /// carries an 802.1Q tag as received.
    @usableFromInline let frameVLANs: UnsafeMutablePointer<UInt16>
    /// Frames retagged for one egress port at a time (allocated when the first VLAN mode is set).
    @usableFromInline var retagged: PacketBatch?
    @usableFromInline let retaggedIndices: UnsafeMutablePointer<UInt16>

    // Spanning tree (LearningSwitch+SpanningTree.swift). Without it every port forwards.
    /// Per-port `SpanningTree.ForwardingState` (0 forwarding, 1 learning, 2 discarding), read once
    /// per batch for the ingress port and once per batch for each egress port with frames.
    @usableFromInline let portStates: UnsafeMutablePointer<UInt8>
    /// The ports that flood: attached ports that forward, in attach order (all attached ports
    /// while the spanning tree is off).
    @usableFromInline let floodPorts: UnsafeMutablePointer<Int>
    @usableFromInline let floodCount: UnsafeMutablePointer<Int>
    @usableFromInline var spanningTree: SpanningTree?
    /// BPDUs received in the current batch, handed to the spanning tree after it: frames of up to
    /// `bpduSlotSize` bytes in fixed slots, with their ports.
    @usableFromInline let bpduInbox: UnsafeMutableRawPointer
    @usableFromInline let bpduLengths: UnsafeMutablePointer<Int>
    @usableFromInline let bpduPorts: UnsafeMutablePointer<Int>
    @usableFromInline let bpduCount: UnsafeMutablePointer<Int>
    /// Link-local frames of the batch being processed (indices), handled after the loop, so the
    /// per-frame loops make no calls.
    @usableFromInline let linkLocalFrames: UnsafeMutablePointer<UInt16>
    @usableFromInline let linkLocalCount: UnsafeMutablePointer<Int>
    @usableFromInline static var bpduSlots: Int { 64 }
    @usableFromInline static var bpduSlotSize: Int { 128 }
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
        table = MACTable(limit: settings.maxMACs, portCount: Self.maxPorts)
        portCounters = .allocate(capacity: Self.maxPorts)
        portCounters.initialize(repeating: PortCounters(), count: Self.maxPorts)
        isAttached = .allocate(capacity: Self.maxPorts)
        isAttached.initialize(repeating: false, count: Self.maxPorts)
        portOptions = .allocate(capacity: Self.maxPorts)
        portOptions.initialize(repeating: 0, count: Self.maxPorts)
        floodLimits = .allocate(capacity: Self.maxPorts)
        floodLimits.initialize(repeating: FloodLimit(), count: Self.maxPorts)
        txQueues = .allocate(capacity: Self.maxPorts * batchCapacity)
        txCounts = .allocate(capacity: Self.maxPorts)
        txCounts.initialize(repeating: 0, count: Self.maxPorts)
        attached = .allocate(capacity: Self.maxPorts)
        attachedCount = .allocate(capacity: 1)
        attachedCount.initialize(to: 0)
        vlanModes = .allocate(capacity: Self.maxPorts)
        vlanModes.initialize(repeating: .none, count: Self.maxPorts)
        vlanTags = .allocate(capacity: Self.maxPorts)
        vlanTags.initialize(repeating: 0, count: Self.maxPorts)
        vlanMembers = .allocate(capacity: Self.maxPorts * 64)
        vlanMembers.initialize(repeating: 0, count: Self.maxPorts * 64)
        frameVLANs = .allocate(capacity: batchCapacity)
        frameVLANs.initialize(repeating: 0, count: batchCapacity)
        retaggedIndices = .allocate(capacity: batchCapacity)
        for i in 0..<batchCapacity { (retaggedIndices + i).initialize(to: UInt16(i)) }
        ports = Array(repeating: nil, count: Self.maxPorts)
        captures = Array(repeating: nil, count: Self.maxPorts)
        captureCount = .allocate(capacity: 1)
        captureCount.initialize(to: 0)
        portStates = .allocate(capacity: Self.maxPorts)
        portStates.initialize(repeating: 0, count: Self.maxPorts)
        floodPorts = .allocate(capacity: Self.maxPorts)
        floodCount = .allocate(capacity: 1)
        floodCount.initialize(to: 0)
        bpduInbox = .allocate(byteCount: Self.bpduSlots * Self.bpduSlotSize, alignment: 8)
        bpduLengths = .allocate(capacity: Self.bpduSlots)
        bpduPorts = .allocate(capacity: Self.bpduSlots)
        bpduCount = .allocate(capacity: 1)
        bpduCount.initialize(to: 0)
        linkLocalFrames = .allocate(capacity: batchCapacity)
        linkLocalCount = .allocate(capacity: 1)
        linkLocalCount.initialize(to: 0)
    }

    deinit {
        portCounters.deallocate()
        isAttached.deallocate()
        portOptions.deallocate()
        floodLimits.deallocate()
        captureCount.deallocate()
        txQueues.deallocate()
        txCounts.deallocate()
        attached.deallocate()
        attachedCount.deallocate()
        vlanModes.deallocate()
        vlanTags.deallocate()
        vlanMembers.deallocate()
        frameVLANs.deallocate()
        retaggedIndices.deallocate()
        portStates.deallocate()
        floodPorts.deallocate()
        floodCount.deallocate()
        bpduInbox.deallocate()
        bpduLengths.deallocate()
        bpduPorts.deallocate()
        bpduCount.deallocate()
        linkLocalFrames.deallocate()
        linkLocalCount.deallocate()
    }

    // MARK: - Ports (control path: called between batches)

    /// Attaches `port` and returns its number, or nil when the switch is full.
    public func attach(_ port: any Port) -> PortNumber? {
        guard let n = (0..<Self.maxPorts).first(where: { !isAttached[$0] }) else { return nil }
        portCounters[n] = PortCounters()
        isAttached[n] = true
        portOptions[n] = 0
        setVLAN(.none, tag: 0, members: [], for: n)
        floodLimits[n] = FloodLimit()
        txCounts[n] = 0
        ports[n] = port
        attached[attachedCount.pointee] = n
        attachedCount.pointee += 1
        portStates[n] = 0
        if let stp = spanningTree { addToSpanningTree(n, stp) } else { rebuildFloodPorts() }
        return n
    }

    /// Detaches port `number`, forgetting its learned MACs and static entries. Returns the port.
    @discardableResult
    public func detach(_ number: PortNumber) -> (any Port)? {
        guard number >= 0, number < Self.maxPorts, isAttached[number] else { return nil }
        table.flush(port: number, includingStatic: true)
        table.setLimit(0, for: number)
        setVLAN(.none, tag: 0, members: [], for: number)
        isAttached[number] = false
        if captures[number] != nil { setCapture(nil, for: number) }
        txCounts[number] = 0
        let port = ports[number]
        ports[number] = nil
        let n = attachedCount.pointee
        if let i = (0..<n).first(where: { attached[$0] == number }) {
            (attached + i).update(from: attached + i + 1, count: n - i - 1)
            attachedCount.pointee = n - 1
        }
        portStates[number] = 0
        spanningTreeParameters[number] = nil
        if let stp = spanningTree {
            stp.removePort(number)
            applySpanningTree(stp, now: spanningTreeClock)
        }
        rebuildFloodPorts()
        return port
    }

    public func port(_ number: PortNumber) -> (any Port)? {
        number >= 0 && number < Self.maxPorts ? ports[number] : nil
    }

    /// Starts copying port `number`'s frames (both directions) into `ring`, or stops with nil.
    public func setCapture(_ ring: CaptureRing?, for number: PortNumber) {
        guard number >= 0, number < Self.maxPorts else { return }
        captures[number] = ring
        captureCount.pointee = captures.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
    }

    public func capture(_ number: PortNumber) -> CaptureRing? {
        number >= 0 && number < Self.maxPorts ? captures[number] : nil
    }

    /// Sets port `number`'s options (between batches).
    public func setOptions(_ options: PortOptions, for number: PortNumber) {
        guard number >= 0, number < Self.maxPorts, isAttached[number] else { return }
        portOptions[number] = options.rawValue
    }

    /// Limits the frames port `number` may have flooded (broadcast, multicast and unknown unicast)
    /// to `framesPerSecond`, with a burst of one second's worth; 0 removes the limit.
    public func setFloodLimit(_ framesPerSecond: UInt64, for number: PortNumber) {
        guard number >= 0, number < Self.maxPorts, isAttached[number] else { return }
        floodLimits[number] = FloodLimit()
        floodLimits[number].rate = framesPerSecond
        floodLimits[number].tokens = framesPerSecond
    }

    public func options(_ number: PortNumber) -> PortOptions {
        number >= 0 && number < Self.maxPorts ? PortOptions(rawValue: portOptions[number]) : []
    }

    /// Runs `body` with port `number`'s counters (housekeeping: timed ports sending held frames).
    @inlinable
    public func withCounters<R>(_ number: PortNumber, _ body: (inout PortCounters) -> R) -> R {
        body(&portCounters[number])
    }

    public var attachedPorts: [PortNumber] { (0..<attachedCount.pointee).map { attached[$0] } }

    public func counters(_ number: PortNumber) -> PortCounters? {
        guard number >= 0, number < Self.maxPorts, isAttached[number] else { return nil }
        return portCounters[number]
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
        port.receive(into: batch, counters: &portCounters[ingress])
        let n = batch.count
        if n > 0 {
            if captureCount.pointee != 0, let ring = captures[ingress] { Self.copy(batch, all: n, into: ring, now: now) }
            process(batch, from: ingress, now: now)
            flush(batch, now: now)
            if bpduCount.pointee != 0 { receiveBPDUs(now: now) }
        }
        return n
    }

    /// Decides where each frame of `batch` (received on `ingress`) goes, queueing it there.
    @inlinable
    public func process(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64) {
        // A port the spanning tree has not let forward (yet): BPDUs and learning only.
        if portStates[ingress] != 0 { return processBlocked(batch, from: ingress, now: now) }
        if vlanPorts != 0 { return processVLAN(batch, from: ingress, now: now) }
        // Exactly two ports that forward, plain options: the dedicated two-port path (SPEC section 6).
        if attachedCount.pointee == 2 && floodCount.pointee == 2 && portOptions[ingress] == 0 && floodLimits[ingress].rate == 0 && settings.twoPortPath {
            let egress = attached[0] == ingress ? attached[1] : attached[0]
            return processTwoPort(batch, from: ingress, to: egress, now: now)
        }
        // The ingress port's options pick one of four copies of the loop, each compiled with its
        // options as constants, so the common case (learning on, not isolated) pays nothing for them.
        switch portOptions[ingress] {
        case 0: process(batch, from: ingress, now: now, learns: true, isolated: false)
        case PortOptions.noLearning.rawValue: process(batch, from: ingress, now: now, learns: false, isolated: false)
        case PortOptions.isolated.rawValue: process(batch, from: ingress, now: now, learns: true, isolated: true)
        default: process(batch, from: ingress, now: now, learns: false, isolated: true)
        }
    }

    @inlinable @inline(__always)
    func process(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64, learns: Bool, isolated: Bool) {
        // Everything the loop reads is copied into locals once per batch.
        let floodUnknown = settings.floodUnknown
        let table = self.table
        let layout = table.layout, tableState = table.state
        let fresh = MACTable.Entry.value(port: ingress, isStatic: false, lastSeen: Self.seconds(now))
        let counters = portCounters + ingress
        let portOptions = self.portOptions
        let floodLimit = floodLimits + ingress
        let limitsFlooding = floodLimit.pointee.rate != 0
        if limitsFlooding { floodLimit.pointee.refill(now: now) }
        let txQueues = self.txQueues, txCounts = self.txCounts, capacity = batchCapacity
        let buffers = batch.buffers
        let count = batch.count
        var rxBytes: UInt64 = 0
        for f in 0..<count {
            let buffer = buffers + f
            rxBytes &+= UInt64(truncatingIfNeeded: buffer.pointee.length)
            guard let (dst, src) = Self.addresses(of: buffer, counters: counters) else { continue }
            if learns { MACTable.learn(MACTable.key(mac: src, vlan: 0), fresh: fresh, in: layout, state: tableState) }
            let index = UInt16(truncatingIfNeeded: f)
            if dst & 0x0100_0000_0000 == 0 {
                let out = MACTable.lookup(MACTable.key(mac: dst, vlan: 0), in: layout)
                if out >= 0 {
                    if out == ingress { counters.pointee.drop(.filtered); continue }
                    if isolated && portOptions[out] & PortOptions.isolated.rawValue != 0 {
                        counters.pointee.drop(.isolated); continue
                    }
                    let n = txCounts[out]
                    txQueues[out &* capacity &+ n] = index
                    txCounts[out] = n &+ 1
                    continue
                }
                if !floodUnknown { counters.pointee.drop(.unknownUnicast); continue }
            } else if dst & 0xFFFF_FFFF_FFF0 == 0x0180_C200_0000 {
                deferLinkLocal(f); continue
            }
            if limitsFlooding {
                if floodLimit.pointee.tokens == 0 { counters.pointee.drop(.floodLimit); continue }
                floodLimit.pointee.tokens &-= 1
            }
            flood(index, except: ingress, skippingIsolated: isolated)
        }
        if linkLocalCount.pointee != 0 { linkLocal(batch, from: ingress, counters: counters) }
        counters.pointee.rxPackets &+= UInt64(count)
        counters.pointee.rxBytes &+= rxBytes
    }

    /// The checks every frame passes first, on either path: a whole Ethernet header, a whole
    /// 802.1Q tag if it claims one, a valid (unicast, non-zero) source. Returns the destination and
    /// source MACs, or nil once the drop is counted.
    @inlinable @inline(__always)
    static func addresses(of buffer: UnsafeMutablePointer<PacketBuffer>,
                          counters: UnsafeMutablePointer<PortCounters>) -> (dst: UInt64, src: UInt64)? {
        let length = buffer.pointee.length
        // One unsigned compare catches both runts (< 14) and oversize frames.
        if UInt(bitPattern: length &- 14) > UInt(maxFrameLength - 14) {
            counters.pointee.drop(length < 14 ? .runt : .oversize); return nil
        }
        let frame = UnsafeRawPointer(buffer.pointee.base + buffer.pointee.offset)
        // Bytes 0..<8 and 6..<14 are inside the 14-byte header: one unaligned load per MAC.
        let dst = UInt64(bigEndian: frame.loadUnaligned(as: UInt64.self)) &>> 16
        let src = UInt64(bigEndian: frame.loadUnaligned(fromByteOffset: 6, as: UInt64.self)) &>> 16
        if length < 18 {
            let etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            if etherType == 0x8100 || etherType == 0x88A8 { counters.pointee.drop(.malformed); return nil }
        }
        // Group bit set (multicast/broadcast) or all zeros: not a valid source.
        if src & 0x0100_0000_0000 != 0 || src == 0 { counters.pointee.drop(.invalidSource); return nil }
        return (dst, src)
    }

    /// The dedicated path of a switch with exactly two ports: every frame that passes the checks
    /// goes to the one other port, so there is no flood fan-out, and the table is consulted only
    /// for what filtering needs: a unicast destination learned on the ingress side does not cross
    /// (and, with `flood-unknown=off`, an unknown one neither). Drops, counters and learning are
    /// those of the general path, frame for frame (tested side by side).
    @inlinable
    func processTwoPort(_ batch: PacketBatch, from ingress: PortNumber, to egress: PortNumber, now: UInt64) {
        let floodUnknown = settings.floodUnknown
        let layout = table.layout, tableState = table.state
        let fresh = MACTable.Entry.value(port: ingress, isStatic: false, lastSeen: Self.seconds(now))
        let counters = portCounters + ingress
        let queue = txQueues + egress &* batchCapacity
        var queued = txCounts[egress]
        let buffers = batch.buffers
        let count = batch.count
        var rxBytes: UInt64 = 0
        for f in 0..<count {
            let buffer = buffers + f
            rxBytes &+= UInt64(truncatingIfNeeded: buffer.pointee.length)
            guard let (dst, src) = Self.addresses(of: buffer, counters: counters) else { continue }
            MACTable.learn(MACTable.key(mac: src, vlan: 0), fresh: fresh, in: layout, state: tableState)
            if dst & 0x0100_0000_0000 == 0 {
                let out = MACTable.lookup(MACTable.key(mac: dst, vlan: 0), in: layout)
                if out == ingress { counters.pointee.drop(.filtered); continue }
                if out < 0 && !floodUnknown { counters.pointee.drop(.unknownUnicast); continue }
            } else if dst & 0xFFFF_FFFF_FFF0 == 0x0180_C200_0000 {
                deferLinkLocal(f); continue
            }
            queue[queued] = UInt16(truncatingIfNeeded: f)
            queued &+= 1
        }
        if linkLocalCount.pointee != 0 { linkLocal(batch, from: ingress, counters: counters) }
        txCounts[egress] = queued
        counters.pointee.rxPackets &+= UInt64(count)
        counters.pointee.rxBytes &+= rxBytes
    }

    @inlinable @inline(__always)
    func flood(_ index: UInt16, except ingress: PortNumber, skippingIsolated: Bool) {
        let txQueues = self.txQueues, txCounts = self.txCounts, capacity = batchCapacity
        for a in 0..<floodCount.pointee {
            let out = floodPorts[a]
            if out == ingress { continue }
            if skippingIsolated && portOptions[out] & PortOptions.isolated.rawValue != 0 { continue }
            let n = txCounts[out]
            txQueues[out &* capacity &+ n] = index
            txCounts[out] = n &+ 1
        }
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
        let capturing = captureCount.pointee != 0
        for a in 0..<attachedCount.pointee {
            let out = attached[a]
            let count = txCounts[out]
            if count == 0 { continue }
            txCounts[out] = 0
            // Known unicast for a port the spanning tree keeps from forwarding.
            if portStates[out] != 0 { portCounters[out].drop(.stpBlocked, count: UInt64(count)); continue }
            if capturing, let ring = captures[out] { Self.copy(batch, indices: txQueues + out &* batchCapacity, count: count, into: ring, now: now) }
            ports[out].unsafelyUnwrapped.transmit(batch, indices: txQueues + out &* batchCapacity, count: count, counters: &portCounters[out])
        }
    }
}
