/// A port's 802.1Q mode (`set-port ... vlan-mode=`).
///
/// - `none` (the default): untagged frames are VLAN 0 and tagged frames keep their VLAN; on the
///   way out VLAN 0 leaves untagged and every other VLAN tagged. A switch whose ports all have no
///   mode is VLAN-unaware and never looks at tags (the fast paths).
/// - `access` (with `tag=N`): untagged frames (and frames tagged N) belong to VLAN N; other tagged
///   frames are dropped; frames leave untagged, and only VLAN N's.
/// - `trunk` (with `trunks=...`, optional native `tag=N`): tagged frames of the listed VLANs are
///   accepted, untagged ones belong to the native VLAN (dropped without one); frames leave tagged,
///   the native VLAN's untagged.
public enum VLANMode: UInt8, Sendable {
    case none, access, trunk
    /// In `LearningSwitch.frameVLANs`: the frame carries an 802.1Q tag as received.
    public static let taggedBit: UInt16 = 0x8000
}

/// VLANs: classification on ingress, VLAN-aware learning and forwarding, and tagging per egress
/// port. Frames keep the form they were received in; an egress port that needs the other form
/// (tag added or removed) gets a copy made for it, with its virtio-net header's offsets moved by
/// the tag's 4 bytes, so one buffer can go out tagged to a trunk and untagged to an access port.
extension LearningSwitch {
    /// Sets port `number`'s VLAN mode (between batches).
    public func setVLAN(_ mode: VLANMode, tag: UInt16, members: [UInt16], for number: PortNumber) {
        guard number >= 0, number < Self.maxPorts else { return }
        if vlanModes[number] != .none { vlanPorts -= 1 }
        if mode != .none { vlanPorts += 1 }
        vlanModes[number] = mode
        vlanTags[number] = tag & 0xFFF
        let words = vlanMembers + number * 64
        words.update(repeating: 0, count: 64)
        for v in members where v < 4096 { words[Int(v >> 6)] |= 1 << UInt64(v & 63) }
        if vlanPorts != 0 && retagged == nil { retagged = PacketBatch(capacity: batchCapacity) }
    }

    public func vlanMode(_ number: PortNumber) -> (mode: VLANMode, tag: UInt16) {
        (vlanModes[number], vlanTags[number])
    }

    /// Whether port `port` carries VLAN `vlan`.
    @inlinable @inline(__always)
    func carries(_ port: PortNumber, _ vlan: UInt16) -> Bool {
        switch vlanModes[port] {
        case .none: return true
        case .access: return vlan == vlanTags[port]
        case .trunk:
            let native = vlanTags[port]
            return (native != 0 && vlan == native) || (vlan != 0 && vlanMembers[port &* 64 &+ Int(vlan >> 6)] & (1 << UInt64(vlan & 63)) != 0)
        }
    }

    /// Whether VLAN `vlan`'s frames leave port `port` tagged.
    @inlinable @inline(__always)
    func tagsOnEgress(_ port: PortNumber, _ vlan: UInt16) -> Bool {
        switch vlanModes[port] {
        case .none: return vlan != 0
        case .access: return false
        case .trunk: return vlan != vlanTags[port]
        }
    }

    /// Whether a frame (of at least 18 bytes if tagged: `addresses` checked) carries an 802.1Q
    /// tag as received, and its VLAN id (0 if untagged).
    @inlinable @inline(__always)
    static func tag(of buffer: UnsafeMutablePointer<PacketBuffer>) -> (tagged: Bool, vid: UInt16) {
        let frame = UnsafeRawPointer(buffer.pointee.frame)
        let tagged = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self)) == 0x8100
        return (tagged, tagged ? UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 14, as: UInt16.self)) & 0xFFF : 0)
    }

    /// The VLAN of a frame received on `port`, or nil if the port does not take it.
    @inlinable @inline(__always)
    func classify(tagged: Bool, vid: UInt16, on port: PortNumber) -> UInt16? {
        switch vlanModes[port] {
        case .none: return tagged ? vid : 0
        case .access: return !tagged || vid == vlanTags[port] ? vlanTags[port] : nil
        case .trunk:
            if !tagged { return vlanTags[port] != 0 ? vlanTags[port] : nil }
            return carries(port, vid) && vid != 0 ? vid : nil
        }
    }

    /// The general path with VLANs: as `process`, with the ingress port's options read per batch.
    @usableFromInline
    func processVLAN(_ batch: PacketBatch, from ingress: PortNumber, now: UInt64) {
        let options = PortOptions(rawValue: portOptions[ingress])
        let learns = !options.contains(.noLearning), isolated = options.contains(.isolated)
        let floodUnknown = settings.floodUnknown
        let layout = table.layout, tableState = table.state
        let fresh = MACTable.Entry.value(port: ingress, isStatic: false, lastSeen: Self.seconds(now))
        let counters = portCounters + ingress
        let floodLimit = floodLimits + ingress
        let limitsFlooding = floodLimit.pointee.rate != 0
        if limitsFlooding { floodLimit.pointee.refill(now: now) }
        var rxBytes: UInt64 = 0
        for f in 0..<batch.count {
            let buffer = batch.buffers + f
            rxBytes &+= UInt64(truncatingIfNeeded: buffer.pointee.length)
            guard let (dst, src) = Self.addresses(of: buffer, counters: counters) else { continue }
            // Link-local frames (BPDUs) are untagged and belong to no VLAN.
            if dst & 0xFFFF_FFFF_FFF0 == 0x0180_C200_0000 { deferLinkLocal(f); continue }
            let (tagged, vid) = Self.tag(of: buffer)
            guard let vlan = classify(tagged: tagged, vid: vid, on: ingress) else { counters.pointee.drop(.vlanFiltered); continue }
            frameVLANs[f] = vlan | (tagged ? VLANMode.taggedBit : 0)
            if learns { MACTable.learn(MACTable.key(mac: src, vlan: vlan), fresh: fresh, in: layout, state: tableState) }
            let index = UInt16(truncatingIfNeeded: f)
            if dst & 0x0100_0000_0000 == 0 {
                let out = MACTable.lookup(MACTable.key(mac: dst, vlan: vlan), in: layout)
                if out >= 0 {
                    if out == ingress { counters.pointee.drop(.filtered); continue }
                    if isolated && portOptions[out] & PortOptions.isolated.rawValue != 0 { counters.pointee.drop(.isolated); continue }
                    if !carries(out, vlan) { counters.pointee.drop(.vlanFiltered); continue }
                    enqueue(index, for: out)
                    continue
                }
                if !floodUnknown { counters.pointee.drop(.unknownUnicast); continue }
            }
            if limitsFlooding {
                if floodLimit.pointee.tokens == 0 { counters.pointee.drop(.floodLimit); continue }
                floodLimit.pointee.tokens &-= 1
            }
            for a in 0..<floodCount.pointee {
                let out = floodPorts[a]
                if out == ingress || !carries(out, vlan) { continue }
                if isolated && portOptions[out] & PortOptions.isolated.rawValue != 0 { continue }
                enqueue(index, for: out)
            }
        }
        if linkLocalCount.pointee != 0 { linkLocal(batch, from: ingress, counters: counters) }
        counters.pointee.rxPackets &+= UInt64(batch.count)
        counters.pointee.rxBytes &+= rxBytes
    }

    @inlinable @inline(__always)
    func enqueue(_ index: UInt16, for out: PortNumber) {
        let n = txCounts[out]
        txQueues[out &* batchCapacity &+ n] = index
        txCounts[out] = n &+ 1
    }

    /// `flush` with VLANs: frames already in the form the port wants go out of their buffers; the
    /// others are retagged into copies first.
    @usableFromInline
    func flushVLAN(_ batch: PacketBatch, now: UInt64) {
        let capturing = captureCount.pointee != 0
        guard let copies = retagged else { return }
        for a in 0..<attachedCount.pointee {
            let out = attached[a]
            let count = txCounts[out]
            if count == 0 { continue }
            txCounts[out] = 0
            if portStates[out] != 0 { portCounters[out].drop(.stpBlocked, count: UInt64(count)); continue }
            let queue = txQueues + out &* batchCapacity
            // Split the queue: as-is frames stay in `queue[0..<kept]`, the rest are copied.
            var kept = 0
            copies.reset()
            for i in 0..<count {
                let index = Int(queue[i])
                let vlan = frameVLANs[index]
                let wanted = tagsOnEgress(out, vlan & 0xFFF)
                if wanted == (vlan & VLANMode.taggedBit != 0) {
                    queue[kept] = queue[i]
                    kept += 1
                } else if !Self.retag(batch.buffers + index, vlan: vlan & 0xFFF, tagged: wanted, into: copies) {
                    portCounters[out].drop(.transmitTooBig)
                }
            }
            let port = ports[out].unsafelyUnwrapped
            if kept > 0 {
                if capturing, let ring = captures[out] { Self.copy(batch, indices: queue, count: kept, into: ring, now: now) }
                port.transmit(batch, indices: queue, count: kept, counters: &portCounters[out])
            }
            if copies.count > 0 {
                if capturing, let ring = captures[out] { Self.copy(copies, indices: retaggedIndices, count: copies.count, into: ring, now: now) }
                port.transmit(copies, indices: retaggedIndices, count: copies.count, counters: &portCounters[out])
            }
        }
    }

    /// Copies `source` into the next buffer of `copies` with an 802.1Q tag for `vlan` inserted
    /// after the MAC addresses (`tagged`) or its tag removed, moving a virtio-net header's offsets
    /// with it. False if it does not fit.
    @usableFromInline
    static func retag(_ source: UnsafeMutablePointer<PacketBuffer>, vlan: UInt16, tagged: Bool, into copies: PacketBatch) -> Bool {
        guard !copies.isFull else { return false }
        let b = copies.next
        let from = UnsafeRawPointer(source.pointee.frame), length = source.pointee.length
        let to = b.pointee.frame
        let newLength = tagged ? length + 4 : length - 4
        guard length >= 18 || tagged, newLength <= b.pointee.capacity - b.pointee.offset else { return false }
        to.copyMemory(from: from, byteCount: 12)
        if tagged {
            to.storeBytes(of: UInt16(0x8100).bigEndian, toByteOffset: 12, as: UInt16.self)
            to.storeBytes(of: vlan.bigEndian, toByteOffset: 14, as: UInt16.self)
            (to + 16).copyMemory(from: from + 12, byteCount: length - 12)
        } else {
            (to + 12).copyMemory(from: from + 16, byteCount: length - 16)
        }
        b.pointee.length = newLength
        let h = source.pointee.offloadLength
        if h == 10 {
            // virtio_net_hdr: flags u8, gso_type u8, hdr_len u16, gso_size u16, csum_start u16, ...
            (to - h).copyMemory(from: from - h, byteCount: h)
            let delta = tagged ? 4 : -4
            let header = to - h
            let flags = header.load(as: UInt8.self)
            let hdrLen = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            if hdrLen != 0 { header.storeBytes(of: UInt16(clamping: max(0, hdrLen + delta)).littleEndian, toByteOffset: 2, as: UInt16.self) }
            if flags & 1 != 0 {
                let start = Int(UInt16(littleEndian: header.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
                guard start + delta >= 14 else { return false }
                header.storeBytes(of: UInt16(clamping: start + delta).littleEndian, toByteOffset: 6, as: UInt16.self)
            }
            b.pointee.offloadLength = h
        }
        copies.commit()
        return true
    }
}
