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
        public init() {}
    }

    @usableFromInline struct Slot {
        @usableFromInline var counters = PortCounters()
        @usableFromInline var txQueue: UnsafeMutablePointer<UInt16>? = nil
        @usableFromInline var txCount = 0
        @usableFromInline var isAttached = false
    }

    public let batchCapacity: Int
    public private(set) var settings: Settings
    public private(set) var table: MACTable
    @usableFromInline let slots: UnsafeMutablePointer<Slot>
    /// Attached port numbers, in attach order: the flood set.
    @usableFromInline let attached: UnsafeMutablePointer<Int>
    @usableFromInline var attachedCount = 0
    @usableFromInline var ports: [(any Port)?]

    public init(settings: Settings = Settings(), batchCapacity: Int = 64) {
        precondition(batchCapacity > 0 && batchCapacity <= Int(UInt16.max))
        self.settings = settings
        self.batchCapacity = batchCapacity
        table = MACTable(limit: settings.maxMACs)
        slots = .allocate(capacity: Self.maxPorts)
        slots.initialize(repeating: Slot(), count: Self.maxPorts)
        attached = .allocate(capacity: Self.maxPorts)
        ports = Array(repeating: nil, count: Self.maxPorts)
    }

    deinit {
        for i in 0..<Self.maxPorts { slots[i].txQueue?.deallocate() }
        slots.deallocate()
        attached.deallocate()
    }

    // MARK: - Ports (control path: called between batches)

    /// Attaches `port` and returns its number, or nil when the switch is full.
    public func attach(_ port: any Port) -> PortNumber? {
        guard let n = (0..<Self.maxPorts).first(where: { !slots[$0].isAttached }) else { return nil }
        slots[n] = Slot(counters: PortCounters(), txQueue: .allocate(capacity: batchCapacity), txCount: 0, isAttached: true)
        ports[n] = port
        attached[attachedCount] = n
        attachedCount += 1
        return n
    }

    /// Detaches port `number`, forgetting its learned MACs and static entries. Returns the port.
    @discardableResult
    public func detach(_ number: PortNumber) -> (any Port)? {
        guard number >= 0, number < Self.maxPorts, slots[number].isAttached else { return nil }
        table.flush(port: number, includingStatic: true)
        slots[number].txQueue?.deallocate()
        slots[number] = Slot()
        let port = ports[number]
        ports[number] = nil
        if let i = (0..<attachedCount).first(where: { attached[$0] == number }) {
            (attached + i).update(from: attached + i + 1, count: attachedCount - i - 1)
            attachedCount -= 1
        }
        return port
    }

    public func port(_ number: PortNumber) -> (any Port)? {
        number >= 0 && number < Self.maxPorts ? ports[number] : nil
    }

    public var attachedPorts: [PortNumber] { (0..<attachedCount).map { attached[$0] } }

    public func counters(_ number: PortNumber) -> PortCounters? {
        guard number >= 0, number < Self.maxPorts, slots[number].isAttached else { return nil }
        return slots[number].counters
    }

    /// Applies new settings. A changed `maxMACs` rebuilds the table (keeping entries that fit).
    public func apply(_ new: Settings) {
        if new.maxMACs != settings.maxMACs {
            let old = table
            table = MACTable(limit: new.maxMACs)
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
        port.receive(into: batch, counters: &slots[ingress].counters)
        let n = batch.count
        if n > 0 {
            process(batch, from: ingress, now: now)
            flush(batch)
        }
        return n
    }

    /// Decides where each frame of `batch` (received on `ingress`) goes, queueing it there.
    @inlinable
    public func process(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64) {
        let nowSeconds = Self.seconds(now)
        let floodUnknown = settings.floodUnknown
        let table = self.table
        let slots = self.slots
        let inSlot = slots + ingress
        var rxBytes: UInt64 = 0
        for f in 0..<batch.count {
            let buffer = batch.buffers + f
            let length = buffer.pointee.length
            rxBytes &+= UInt64(length)
            if length < 14 { inSlot.pointee.counters.drop(.runt); continue }
            if length > Self.maxFrameLength { inSlot.pointee.counters.drop(.oversize); continue }
            let frame = UnsafeRawPointer(buffer.pointee.frame)
            // Bytes 0..<8 and 6..<14 are inside the 14-byte header: one unaligned load per MAC.
            let dst = UInt64(bigEndian: frame.loadUnaligned(as: UInt64.self)) >> 16
            let src = UInt64(bigEndian: frame.loadUnaligned(fromByteOffset: 6, as: UInt64.self)) >> 16
            let etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            if (etherType == 0x8100 || etherType == 0x88A8) && length < 18 {
                inSlot.pointee.counters.drop(.malformed); continue
            }
            // Group bit set (multicast/broadcast) or all zeros: not a valid source.
            if src & 0x0100_0000_0000 != 0 || src == 0 { inSlot.pointee.counters.drop(.invalidSource); continue }
            table.learn(MACTable.key(mac: src, vlan: 0), port: ingress, now: nowSeconds)
            let index = UInt16(truncatingIfNeeded: f)
            if dst & 0x0100_0000_0000 == 0 {
                let out = table.lookup(MACTable.key(mac: dst, vlan: 0))
                if out >= 0 {
                    if out == ingress { inSlot.pointee.counters.drop(.filtered); continue }
                    let s = slots + out
                    s.pointee.txQueue.unsafelyUnwrapped[s.pointee.txCount] = index
                    s.pointee.txCount &+= 1
                    continue
                }
                if !floodUnknown { inSlot.pointee.counters.drop(.unknownUnicast); continue }
            }
            flood(index, except: ingress)
        }
        inSlot.pointee.counters.rxPackets &+= UInt64(batch.count)
        inSlot.pointee.counters.rxBytes &+= rxBytes
    }

    @inlinable @inline(__always)
    func flood(_ index: UInt16, except ingress: PortNumber) {
        for a in 0..<attachedCount {
            let n = attached[a]
            if n == ingress { continue }
            let s = slots + n
            s.pointee.txQueue.unsafelyUnwrapped[s.pointee.txCount] = index
            s.pointee.txCount &+= 1
        }
    }

    /// Hands each port its queued frames, once per port.
    @inlinable
    public func flush(_ batch: PacketBatch) {
        for a in 0..<attachedCount {
            let n = attached[a]
            let s = slots + n
            let count = s.pointee.txCount
            if count == 0 { continue }
            s.pointee.txCount = 0
            ports[n].unsafelyUnwrapped.transmit(batch, indices: s.pointee.txQueue.unsafelyUnwrapped, count: count, counters: &s.pointee.counters)
        }
    }
}
