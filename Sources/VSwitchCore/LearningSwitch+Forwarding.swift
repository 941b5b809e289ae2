/// What the forwarding loop needs to know about the ingress port, fixed for a batch.
///
/// `forward` is generic over it, and each policy type is a separate specialisation: a policy
/// whose properties are constants (`PlainPolicy`, `TwoPortPolicy`) compiles to a loop with the
/// untaken branches gone, as the hand-written copies of the loop were before; the others read
/// their few flags from registers. There is one loop, so every path applies the same checks in
/// the same order (tested frame for frame against a model, ForwardingModelTests).
@usableFromInline
protocol IngressPolicy {
    /// Frames are classified into VLANs (some port has a VLAN mode).
    var vlanAware: Bool { get }
    /// Source MACs are learned (`learning=on`, and the port forwards or learns).
    var learns: Bool { get }
    /// The ingress port is isolated: nothing goes to another isolated port.
    var isolated: Bool { get }
    /// Flooded frames take a token of the port's `broadcast-limit`.
    var limited: Bool { get }
    /// Exactly two ports forward: what passes goes to the other one, no table needed to send.
    var twoPort: Bool { get }
    /// The port forwards (false: the spanning tree keeps it learning or discarding, and every
    /// frame but BPDUs is dropped after learning).
    var forwards: Bool { get }
}

/// The common case: learning on, not isolated, no limit, no VLANs, more than two ports.
@usableFromInline @frozen
struct PlainPolicy: IngressPolicy {
    @inlinable init() {}
    @inlinable var vlanAware: Bool { false }
    @inlinable var learns: Bool { true }
    @inlinable var isolated: Bool { false }
    @inlinable var limited: Bool { false }
    @inlinable var twoPort: Bool { false }
    @inlinable var forwards: Bool { true }
}

/// A switch of exactly two forwarding ports, plain options (SPEC section 6).
@usableFromInline @frozen
struct TwoPortPolicy: IngressPolicy {
    @inlinable init() {}
    @inlinable var vlanAware: Bool { false }
    @inlinable var learns: Bool { true }
    @inlinable var isolated: Bool { false }
    @inlinable var limited: Bool { false }
    @inlinable var twoPort: Bool { true }
    @inlinable var forwards: Bool { true }
}

/// Any options, with or without VLANs.
@usableFromInline @frozen
struct GeneralPolicy<VLANs: StaticFlag>: IngressPolicy {
    @usableFromInline let learns: Bool
    @usableFromInline let isolated: Bool
    @usableFromInline let limited: Bool
    @inlinable init(options: UInt8, limited: Bool) {
        learns = options & LearningSwitch.PortOptions.noLearning.rawValue == 0
        isolated = options & LearningSwitch.PortOptions.isolated.rawValue != 0
        self.limited = limited
    }
    @inlinable var vlanAware: Bool { VLANs.value }
    @inlinable var twoPort: Bool { false }
    @inlinable var forwards: Bool { true }
}

/// A port the spanning tree keeps learning or discarding.
@usableFromInline @frozen
struct BlockedPolicy: IngressPolicy {
    @usableFromInline let learns: Bool
    @usableFromInline let vlanAware: Bool
    @inlinable init(learns: Bool, vlanAware: Bool) {
        self.learns = learns
        // The VLAN matters only for the learned key.
        self.vlanAware = vlanAware && learns
    }
    @inlinable var isolated: Bool { false }
    @inlinable var limited: Bool { false }
    @inlinable var twoPort: Bool { false }
    @inlinable var forwards: Bool { false }
}

/// A Bool known at compile time, as a type (Swift has no value generics for Bool).
@usableFromInline protocol StaticFlag { static var value: Bool { get } }
@usableFromInline @frozen enum Off: StaticFlag { @inlinable static var value: Bool { false } }
@usableFromInline @frozen enum On: StaticFlag { @inlinable static var value: Bool { true } }

extension LearningSwitch {
    /// Decides where each frame of `batch` (received on `ingress`) goes, queueing it there:
    /// picks the ingress port's policy and runs `forward` with it.
    @inlinable
    public func process(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64) {
        let ports = self.ports
        let options = ports.options[ingress]
        let state = ports.forwardingStates[ingress]
        if state != 0 {
            let learns = state == SpanningTree.ForwardingState.learning.rawValue
                && options & PortOptions.noLearning.rawValue == 0
            return forward(batch, from: ingress, now: now, BlockedPolicy(learns: learns, vlanAware: self.path.pointee.vlanPorts != 0))
        }
        let path = self.path.pointee
        let limited = ports.floodLimits[ingress].rate != 0
        if path.vlanPorts != 0 {
            return forward(batch, from: ingress, now: now, GeneralPolicy<On>(options: options, limited: limited))
        }
        if options == 0 && !limited {
            let floodSet = self.floodSet
            if floodSet.attachedCount.pointee == 2 && floodSet.count.pointee == 2 && path.twoPortPath {
                return forward(batch, from: ingress, now: now, TwoPortPolicy())
            }
            return forward(batch, from: ingress, now: now, PlainPolicy())
        }
        forward(batch, from: ingress, now: now, GeneralPolicy<Off>(options: options, limited: limited))
    }

    /// The forwarding loop. In order, for each frame: the checks of `addresses`; a reserved
    /// link-local destination is kept for the switch (never learned from, never forwarded); the
    /// frame's VLAN (if VLAN-aware; a VLAN the port does not take is `vlan-filtered`); learning;
    /// a port that does not forward drops here (`stp-discarding`); known unicast goes to its port
    /// (`filtered` if that is the ingress port, `isolated`, `vlan-filtered`); unknown unicast
    /// floods unless `flood-unknown=off`; flooding takes a `broadcast-limit` token.
    @inlinable
    func forward<P: IngressPolicy>(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64, _ policy: P) {
        // Everything the loop reads is copied into locals once per batch.
        let path = self.path.pointee
        let floodUnknown = path.floodUnknown
        let layout = path.layout, tableState = path.tableState
        let fresh = MACTable.Entry.value(port: ingress, isStatic: false, lastSeen: Self.seconds(now))
        let ports = self.ports, scratch = self.scratch
        let counters = ports.counters(ingress)
        let floodLimit = ports.floodLimits + ingress
        if policy.limited { floodLimit.pointee.refill(now: now) }
        // The two-port path keeps its one queue's length in a register.
        let egress = policy.twoPort ? (floodSet.attached[0] == ingress ? floodSet.attached[1] : floodSet.attached[0]) : 0
        let twoPortQueue = ports.queue(egress)
        var queued = policy.twoPort ? ports.txCounts[egress] : 0
        let buffers = batch.buffers
        let count = batch.count
        var rxBytes: UInt64 = 0
        for f in 0..<count {
            let buffer = buffers + f
            rxBytes &+= UInt64(truncatingIfNeeded: buffer.pointee.length)
            guard let (dst, src) = Self.addresses(of: buffer, counters: counters) else { continue }
            if dst & 0xFFFF_FFFF_FFF0 == 0x0180_C200_0000 { scratch.deferLinkLocal(f); continue }
            var vlan: UInt16 = 0
            if policy.vlanAware {
                let (tagged, vid) = Self.tag(of: buffer)
                guard let v = ports.classify(tagged: tagged, vid: vid, on: ingress) else { counters.drop(.vlanFiltered); continue }
                vlan = v
                scratch.frameVLANs[f] = v | (tagged ? VLANMode.taggedBit : 0)
            }
            if policy.learns { MACTable.learn(MACTable.key(mac: src, vlan: vlan), fresh: fresh, in: layout, state: tableState) }
            if !policy.forwards { counters.drop(.stpDiscarding); continue }
            let index = UInt16(truncatingIfNeeded: f)
            if dst & 0x0100_0000_0000 == 0 {
                let out = MACTable.lookup(MACTable.key(mac: dst, vlan: vlan), in: layout)
                if out >= 0 {
                    if out == ingress { counters.drop(.filtered); continue }
                    if !policy.twoPort {
                        if policy.isolated && ports.options[out] & PortOptions.isolated.rawValue != 0 { counters.drop(.isolated); continue }
                        if policy.vlanAware && !ports.carries(out, vlan) { counters.drop(.vlanFiltered); continue }
                        ports.enqueue(index, for: out)
                        continue
                    }
                } else if !floodUnknown {
                    counters.drop(.unknownUnicast); continue
                }
            }
            if policy.twoPort {
                twoPortQueue[queued] = index
                queued &+= 1
                continue
            }
            if policy.limited && !floodLimit.pointee.take() { counters.drop(.floodLimit); continue }
            flood(index, from: ingress, vlan: vlan, policy)
        }
        if policy.twoPort { ports.txCounts[egress] = queued }
        if scratch.linkLocalCount.pointee != 0 { linkLocal(batch, from: ingress, counters: counters) }
        counters.rxPackets &+= UInt64(count)
        counters.rxBytes &+= rxBytes
    }

    /// Queues frame `index` for every port that floods, except the ingress port (and ports the
    /// policy excludes: isolated ones from an isolated port, ports without the frame's VLAN).
    @inlinable @inline(__always)
    func flood<P: IngressPolicy>(_ index: UInt16, from ingress: PortNumber, vlan: UInt16, _ policy: P) {
        let ports = self.ports, floodSet = self.floodSet
        for a in 0..<floodSet.count.pointee {
            let out = floodSet.ports[a]
            if out == ingress { continue }
            if policy.vlanAware && !ports.carries(out, vlan) { continue }
            if policy.isolated && ports.options[out] & PortOptions.isolated.rawValue != 0 { continue }
            ports.enqueue(index, for: out)
        }
    }

    /// The checks every frame passes first: a whole Ethernet header, a whole 802.1Q tag if it
    /// claims one, a valid (unicast, non-zero) source. Returns the destination and source MACs,
    /// or nil once the drop is counted.
    @inlinable @inline(__always)
    static func addresses(of buffer: UnsafeMutablePointer<PacketBuffer>, counters: PortCounters) -> (dst: UInt64, src: UInt64)? {
        let length = buffer.pointee.length
        // One unsigned compare catches both runts (< 14) and oversize frames.
        if UInt(bitPattern: length &- 14) > UInt(maxFrameLength - 14) {
            counters.drop(length < 14 ? .runt : .oversize); return nil
        }
        let frame = UnsafeRawPointer(buffer.pointee.base + buffer.pointee.offset)
        // Bytes 0..<8 and 6..<14 are inside the 14-byte header: one unaligned load per MAC.
        let dst = UInt64(bigEndian: frame.loadUnaligned(as: UInt64.self)) &>> 16
        let src = UInt64(bigEndian: frame.loadUnaligned(fromByteOffset: 6, as: UInt64.self)) &>> 16
        if length < 18 {
            let etherType = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            if etherType == 0x8100 || etherType == 0x88A8 { counters.drop(.malformed); return nil }
        }
        // Group bit set (multicast/broadcast) or all zeros: not a valid source.
        if src & 0x0100_0000_0000 != 0 || src == 0 { counters.drop(.invalidSource); return nil }
        return (dst, src)
    }
}
