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
    /// In `BatchScratch.frameVLANs`: the frame carries an 802.1Q tag as received.
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
        if ports.vlanModes[number] != .none { vlanPorts -= 1 }
        if mode != .none { vlanPorts += 1 }
        ports.vlanModes[number] = mode
        ports.vlanTags[number] = tag & 0xFFF
        let words = ports.vlanMembers + number * 64
        words.update(repeating: 0, count: 64)
        for v in members where v < 4096 { words[Int(v >> 6)] |= 1 << UInt64(v & 63) }
        if vlanPorts != 0 && retagged == nil { retagged = PacketBatch(capacity: batchCapacity) }
    }

    public func vlanMode(_ number: PortNumber) -> (mode: VLANMode, tag: UInt16) {
        (ports.vlanModes[number], ports.vlanTags[number])
    }

    /// Whether a frame (of at least 18 bytes if tagged: `addresses` checked) carries an 802.1Q
    /// tag as received, and its VLAN id (0 if untagged).
    @inlinable @inline(__always)
    static func tag(of buffer: UnsafeMutablePointer<PacketBuffer>) -> (tagged: Bool, vid: UInt16) {
        let frame = UnsafeRawPointer(buffer.pointee.frame)
        let tagged = UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 12, as: UInt16.self)) == 0x8100
        return (tagged, tagged ? UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: 14, as: UInt16.self)) & 0xFFF : 0)
    }

    /// `flush` with VLANs: frames already in the form the port wants go out of their buffers; the
    /// others are retagged into copies first.
    @usableFromInline
    func flushVLAN(_ batch: PacketBatch, now: UInt64) {
        let capturing = path.pointee.captureCount != 0
        guard let copies = retagged else { return }
        let ports = self.ports, floodSet = self.floodSet, frameVLANs = scratch.frameVLANs
        for a in 0..<floodSet.attachedCount.pointee {
            let out = floodSet.attached[a]
            let count = ports.txCounts[out]
            if count == 0 { continue }
            ports.txCounts[out] = 0
            let counters = ports.counters(out)
            if ports.forwardingStates[out] != 0 { counters.drop(.stpBlocked, count: UInt64(count)); continue }
            let queue = ports.queue(out)
            // Split the queue: as-is frames stay in `queue[0..<kept]`, the rest are copied.
            var kept = 0
            copies.reset()
            for i in 0..<count {
                let index = Int(queue[i])
                let vlan = frameVLANs[index]
                let wanted = ports.tagsOnEgress(out, vlan & 0xFFF)
                if wanted == (vlan & VLANMode.taggedBit != 0) {
                    queue[kept] = queue[i]
                    kept += 1
                } else if !Self.retag(batch.buffers + index, vlan: vlan & 0xFFF, tagged: wanted, into: copies) {
                    counters.drop(.transmitTooBig)
                }
            }
            let port = devices[out].unsafelyUnwrapped
            if kept > 0 {
                if capturing, let ring = captures[out] { Self.copy(batch, indices: queue, count: kept, into: ring, now: now) }
                port.transmit(batch, indices: queue, count: kept, counters: counters)
            }
            if copies.count > 0 {
                if capturing, let ring = captures[out] { Self.copy(copies, indices: scratch.identity, count: copies.count, into: ring, now: now) }
                port.transmit(copies, indices: scratch.identity, count: copies.count, counters: counters)
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

/// What VLANs mean per port: the decisions `forward` and `flushVLAN` make with the VLAN columns.
extension PortTable {
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
}
