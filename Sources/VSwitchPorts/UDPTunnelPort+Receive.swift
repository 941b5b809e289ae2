#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchSystem
import VSwitchTunnel
import VSwitchWire

/// Receive: recvmmsg with UDP_GRO into a slab; each datagram checked and its frame copied
/// (VXLAN) or opened (secure) into a pool buffer; GRO messages merged back into superframes as
/// soon as they are in the batch, never cut across two batches.
extension UDPTunnelPort {
    // MARK: - Receive

    public func receive(into batch: PacketBatch, counters: PortCounters) {
        guard rxFD >= 0 else { return }
        let start = batch.count
        // Consecutive segments of a TCP stream become one superframe (userspace GRO): one write
        // into a TAP instead of one per 1,400 bytes.
        // A secure datagram is authenticated whole, inner checksums included: no need to check
        // them again. VXLAN's outer UDP checksum may be zero (the kernel's default over IPv4), so
        // there every merged segment's TCP checksum is verified.
        let verify = channel == nil
        let clock = SystemCalls.monotonicNanoseconds()
        let now = UInt32(truncatingIfNeeded: clock / 1_000_000_000)
        // Handshake answers and keepalives the engine queued go out before this returns.
        // The handshake socket is read after the data: when this call found no data (the wakeup
        // was for a handshake), or once a millisecond while data flows, rather than with one
        // more system call for every batch.
        defer {
            if hsFD >= 0, batch.count == start || clock &- lastHandshakeRead >= 1_000_000 {
                lastHandshakeRead = clock
                receiveHandshakes(clock: clock, counters: counters)
            }
            if let channel, channel.outboxCount > 0 { sendOutbox() }
        }
        while !batch.isFull {
            if pendingMessage >= pendingCount {
                let n = Int(vswitch_recv_batch(rxFD, rxStarts, rxCapacities, rxLengths, rxSources, rxSegments, UInt32(Self.rxMessages)))
                if n < 0 { counters.rxErrors &+= 1; return }
                if n == 0 { return }
                pendingMessage = 0
                pendingCount = n
                pendingOffset = 0
            }
            // A message is one datagram, or several of one flow that UDP_GRO coalesced (each
            // `rxSegments[i]` bytes, the last maybe shorter): usually one TSO superframe of the
            // sender, cut to fit a UDP GSO send. Its frames are merged again as soon as they are
            // in the batch (with the run before, if they continue it), so a batch holds many
            // messages; one that would not fit whole waits for the next call, unless the batch
            // holds nothing yet. Cutting a message in two would cost a second write into the
            // TAP, and a second ACK from its TCP, for the same data.
            while pendingMessage < pendingCount && !batch.isFull {
                let i = pendingMessage
                let length = rxLengths[i]
                // Secure datagrams come from wherever a remote is now (it roams): the session
                // they authenticate on says which remote sent them.
                guard length != UInt32.max, let remote = channel != nil ? -1 : remoteIndex(rxSources + i) else {
                    counters.drop(length == UInt32.max ? .tunnelMalformed : .unknownRemote)
                    pendingMessage += 1
                    continue
                }
                let total = Int(length)
                let segment = rxSegments[i] > 0 ? Int(rxSegments[i]) : max(total, 1)
                if pendingOffset == 0 && batch.count > start
                    && (total + segment - 1) / segment > batch.capacity - batch.count { return }
                let first = batch.count
                repeat {
                    let size = min(segment, total - pendingOffset)
                    accept(UnsafeRawPointer(rxStarts[i]! + pendingOffset), length: size, from: remote, source: rxSources + i,
                           into: batch, now: now, clock: clock, counters: counters)
                    pendingOffset += max(size, 1)
                } while pendingOffset < total && !batch.isFull
                if pendingOffset >= total {
                    pendingMessage += 1
                    pendingOffset = 0
                }
                if batch.count - first > 1 || (first > start && batch.count > first) {
                    TCPCoalescer.coalesce(batch, from: max(start, first - 1), verifyChecksums: verify)
                }
            }
        }
    }

    /// Checks one datagram from `remote` and commits its frame to the batch.
    @inline(__always)
    func accept(_ datagram: UnsafeRawPointer, length: Int, from sourceRemote: Int, source: UnsafePointer<sockaddr_storage>,
                        into batch: PacketBatch, now: UInt32, clock: UInt64, counters: PortCounters) {
        let target = batch.next
        let room = target.pointee.capacity - target.pointee.offset
        var frameLength: Int
        var remote = sourceRemote
        if let channel {
            let sourceLength = UInt32(Int32(source.pointee.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
            switch channel.open(datagram: UnsafeRawBufferPointer(start: datagram, count: length), from: source, sourceLength: sourceLength,
                                now: clock, into: UnsafeMutableRawBufferPointer(start: target.pointee.frame, count: room),
                                frameHasHeadroom: target.pointee.offset >= 4) {
            case .frame(let byteCount, let frameVNI, let peer):
                guard frameVNI == vni else { counters.drop(.unknownVNI); return }
                frameLength = byteCount
                remote = peer
            case .consumed:
                return
            case .dropped(let reason):
                counters.drop(Self.dropReason(reason))
                return
            }
        } else {
            // Through the view: it is inlinable, so the check and the VNI compile to the loads of
            // the hand-written decode that stood here (see Docs/performance.md, issue 14 step 6).
            guard let header = VXLANHeader(validating: UnsafeRawBufferPointer(start: datagram, count: length)),
                  header.payload.count <= room
            else { counters.drop(.tunnelMalformed); return }
            guard header.vni == vni else { counters.drop(.unknownVNI); return }
            let inner = header.payload
            frameLength = inner.count
            target.pointee.frame.copyMemory(from: inner.baseAddress!, byteCount: frameLength)
        }
        target.pointee.length = frameLength
        // A peer on this host (the kernel's VXLAN over a veth) may leave the inner TCP/UDP
        // checksum partial, as it would for hardware to finish: describe it, as the pcap port does.
        if let offload = VirtioNetHeader.infer(frame: target.pointee.frame, length: frameLength, mtu: 65_535) {
            offload.store(to: target.pointee.frame - VirtioNetHeader.headerLength)
            target.pointee.offloadLength = VirtioNetHeader.headerLength
        }
        remoteCounters[remote].rxPackets &+= 1
        remoteCounters[remote].rxBytes &+= UInt64(frameLength)
        if frameLength >= 12 {
            let src = UnsafeRawPointer(target.pointee.frame).loadBigEndian(fromByteOffset: 6, as: UInt64.self) &>> 16
            if src & 0x0100_0000_0000 == 0 { remember(src, at: remote, now: now) }
        }
        batch.commit()
    }

    @inline(__always)
    func remoteIndex(_ source: UnsafePointer<sockaddr_storage>) -> Int? {
        for r in 0..<remoteCount where remotes[r].sameHost(as: source) { return r }
        return nil
    }
}
