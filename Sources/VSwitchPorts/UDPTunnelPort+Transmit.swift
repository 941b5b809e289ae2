#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchSystem
import VSwitchTunnel
import VSwitchWire

/// Transmit: per-flow sockets (VXLAN) or the bound socket (secure), sendmmsg batches, TSO
/// superframes segmented in software and sent with UDP GSO (VXLAN gathers each payload from the
/// frame; secure seals each segment in place, once per remote).
extension UDPTunnelPort {
    // MARK: - Transmit

    public func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        guard !txFDs.isEmpty else { return }
        sendClock = SystemCalls.monotonicNanoseconds()
        let now = UInt32(truncatingIfNeeded: sendClock / 1_000_000_000)
        // Handshakes the engine started for remotes without a session go out with the batch.
        defer { if let channel, channel.outboxCount > 0 { sendOutbox() } }
        let secure = channel != nil
        for i in 0..<count {
            let b = batch.buffers + Int(indices[i])
            let frame = UnsafeRawPointer(b.pointee.frame)
            let length = b.pointee.length
            guard length >= 14 else { counters.drop(.transmitUnsupported); continue }
            let dst = UInt64(bigEndian: frame.loadUnaligned(as: UInt64.self)) &>> 16
            let only = dst & 0x0100_0000_0000 == 0 ? remote(of: dst, now: now) : nil
            let socket = secure ? 0 : Int(VXLANSourcePort.forFrame(UnsafeRawBufferPointer(start: frame, count: length))) % Self.txSockets
            var header: VirtioNetHeader? = nil
            if b.pointee.offloadLength == VirtioNetHeader.headerLength {
                let h = VirtioNetHeader(loadingFrom: frame - VirtioNetHeader.headerLength)
                if !h.isPlain { header = h }
            }
            if let h = header {
                sendSegmented(frame, length: length, header: h, only: only, socket: socket, counters: counters)
            } else {
                send(frame, length: length, inPlace: true, only: only, socket: socket, counters: counters)
            }
        }
        flush(counters: counters)
    }

    /// Segments (and checksums) a frame with offload metadata, then sends each segment.
    func sendSegmented(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                               counters: PortCounters) {
        var h = header
        // TCP segments may be made smaller than the sender's MSS: the receiver takes any size,
        // and each then fits the tunnel without IP fragmentation. A single TCP segment too big
        // for the tunnel becomes a superframe of one, cut the same way.
        let limit = only.map { remoteMaxFrame[$0] } ?? smallestMaxFrame
        var gso = h.gsoType.withoutECN
        if gso == .none, length > limit, h.flags.contains(.needsChecksum), h.checksumOffset == VirtioNetHeader.tcpChecksumOffset,
           let version = Self.ipVersion(frame, length: length) {
            gso = version == 4 ? .tcpv4 : .tcpv6
            h.gsoType = gso
            h.gsoSize = UInt16(clamping: length)
        }
        if gso == .tcpv4 || gso == .tcpv6 {
            let start = Int(h.checksumStart)
            if start + 13 <= length {
                let headers = start + Int(frame.load(fromByteOffset: start + 12, as: UInt8.self) >> 4) * 4
                let fits = limit - headers
                if fits > 0 && Int(h.gsoSize) > fits { h.gsoSize = UInt16(fits) }
            }
        }
        if udpGSO && (gso == .tcpv4 || gso == .tcpv6) {
            return sendGSO(frame, length: length, header: h, only: only, socket: socket, counters: counters)
        }
        let result = GSOSegmenter.forEachSegment(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: h,
            scratch: UnsafeMutableRawBufferPointer(start: segmentScratch, count: arenaSlotSize - SecureHandshake.dataOverhead)
        ) { segment in
            send(segment.baseAddress!, length: segment.count, inPlace: false, only: only, socket: socket, counters: counters)
            return true
        }
        if case .failure(let f) = result { counters.drop(f == .scratchTooSmall ? .transmitTooBig : .transmitUnsupported) }
    }

    /// A TCP superframe's segments as UDP GSO sends: the datagrams, all of one size but the last,
    /// go to the kernel in runs that fit one sendmsg with UDP_SEGMENT (65,507 bytes, 64
    /// datagrams), which cuts them (in software late, or in the NIC). Falls back to one datagram
    /// per send if the kernel refuses UDP_SEGMENT.
    func sendGSO(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                         counters: PortCounters) {
        flush(counters: counters)  // what is queued goes first: order is kept
        if channel == nil {
            sendGathering(frame, length: length, header: header, only: only, socket: socket, counters: counters)
        } else {
            sendSealed(frame, length: length, header: header, only: only, socket: socket, counters: counters)
        }
    }

    /// VXLAN: only each segment's headers are built (behind its VXLAN header, in a slot of
    /// `gsoBuffer`); its payload is gathered by the send from where it lies in the frame, so no
    /// payload byte is copied in userspace, only summed for the checksum.
    func sendGathering(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                               counters: PortCounters) {
        let limit = local.isIPv6 ? 65_527 : 65_507
        let h = VXLANHeader.headerLength
        var run = 0, runBytes = 0, size = 0, perRun = 1
        var slotTooSmall = false
        let result = GSOSegmenter.forEachSegmentGathering(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: header,
            headers: { headersLength, segmentLength in
                guard h + headersLength <= Self.gsoSlot else { slotTooSmall = true; return nil }
                if size == 0 {
                    size = h + segmentLength
                    perRun = max(1, min(Self.gsoMaxSegments, limit / size))
                }
                let slot = gsoBuffer + run * Self.gsoSlot
                slot.copyMemory(from: vxlanHeader, byteCount: h)
                return slot + h
            }
        ) { headers, payload in
            gsoPieces[2 * run] = iovec(iov_base: gsoBuffer + run * Self.gsoSlot, iov_len: h + headers.count)
            gsoPieces[2 * run + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: payload.baseAddress), iov_len: payload.count)
            run += 1
            runBytes += h + headers.count + payload.count
            if run == perRun {
                transmitRun(datagrams: run, piecesEach: 2, bytes: runBytes, size: size, only: only, socket: socket, counters: counters)
                run = 0
                runBytes = 0
            }
            return true
        }
        if case .failure = result { counters.drop(.transmitUnsupported); return }
        if slotTooSmall { counters.drop(.transmitTooBig) }
        if run > 0 {
            transmitRun(datagrams: run, piecesEach: 2, bytes: runBytes, size: size, only: only, socket: socket, counters: counters)
        }
    }

    /// Secure: each segment is built straight into `gsoBuffer` where its datagram carries it
    /// (behind the 16-byte header and the VNI, with room for the tag after it) and sealed in
    /// place, so each payload byte is copied once, summed on the way and encrypted where it lies.
    func sendSealed(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, only: Int?, socket: Int,
                            counters: PortCounters) {
        // Each remote has its own session: a superframe for several is sealed once for each.
        for k in 0..<(only == nil ? remoteCount : 1) {
            sendSealed(frame, length: length, header: header, to: only ?? k, socket: socket, counters: counters)
        }
    }

    func sendSealed(_ frame: UnsafeRawPointer, length: Int, header: VirtioNetHeader, to remote: Int, socket: Int,
                            counters: PortCounters) {
        guard let channel else { return }
        let limit = local.isIPv6 ? 65_527 : 65_507
        let h = 20
        let t = 16
        var used = 0, count = 0, size = 0
        var sealFailed = false, noSession = false
        let clock = sendClock
        let result = GSOSegmenter.forEachSegment(
            of: UnsafeRawBufferPointer(start: frame, count: length), header: header,
            scratch: UnsafeMutableRawBufferPointer(start: segmentScratch, count: arenaSlotSize - SecureHandshake.dataOverhead),
            placement: { segment in
                guard used + h + segment + t <= Self.gsoCapacity else { return nil }
                return gsoBuffer + used + h
            },
            usesPlacement: true
        ) { segment in
            let datagram = h + segment.count + t
            // The segment already sits at offset 20 of its datagram: sealed in place.
            switch channel.seal(frame: segment, vni: vni, peer: remote, now: clock,
                                into: UnsafeMutableRawBufferPointer(start: gsoBuffer + used, count: datagram)) {
            case .sealed(let n) where n == datagram: break
            case .noSession: noSession = true; return false
            default: sealFailed = true; return false
            }
            if count == 0 { size = datagram }
            used += datagram
            count += 1
            return true
        }
        if noSession { counters.drop(.noSession); return }
        if sealFailed { counters.txErrors &+= 1 }
        if case .failure(let f) = result { counters.drop(f == .scratchTooSmall ? .transmitTooBig : .transmitUnsupported); return }
        guard count > 0 else { return }
        // Runs of equal datagrams (the last may be shorter), each one send.
        let perRun = max(1, min(Self.gsoMaxSegments, limit / size))
        var offset = 0, sent = 0
        while sent < count {
            let n = min(perRun, count - sent)
            let bytes = min(n * size, used - offset)
            for j in 0..<n {
                gsoPieces[j] = iovec(iov_base: gsoBuffer + offset + j * size, iov_len: min(size, bytes - j * size))
            }
            transmitRun(datagrams: n, piecesEach: 1, bytes: bytes, size: size, only: remote, socket: socket, counters: counters)
            offset += bytes
            sent += n
        }
    }

    /// Sends the `datagrams` datagrams whose pieces are in `gsoPieces` (`piecesEach` each, `bytes`
    /// in all, each `size` bytes but the last) to the destination(s): one UDP GSO send, or one
    /// send per datagram once the kernel has refused UDP_SEGMENT.
    func transmitRun(datagrams count: Int, piecesEach: Int, bytes: Int, size: Int, only: Int?, socket: Int,
                             counters: PortCounters) {
        let overhead = encapsulation.overhead
        let fanOut = only == nil ? remoteCount : 1
        for k in 0..<fanOut {
            let r = only ?? k
            if udpGSO {
                let n = vswitch_send_gso(txFDs[socket], gsoPieces, UInt32(count * piecesEach), UInt16(size),
                                         remoteAddresses + r, remoteLengths[r])
                if n >= 0 {
                    let inner = UInt64(bytes - count * overhead)
                    remoteCounters[r].txPackets &+= UInt64(count)
                    remoteCounters[r].txBytes &+= inner
                    counters.txPackets &+= UInt64(count)
                    counters.txBytes &+= inner
                    continue
                }
                if -n == EAGAIN || -n == ENOBUFS { counters.drop(.transmitQueueFull, count: UInt64(count)); continue }
                guard -n == EINVAL || -n == ENOPROTOOPT || -n == EIO || -n == EOPNOTSUPP else { counters.txErrors &+= 1; continue }
                // No UDP GSO here: send these one by one, and every later superframe too.
                udpGSO = false
            }
            for d in 0..<count {
                let n = vswitch_send_gso(txFDs[socket], gsoPieces + d * piecesEach, UInt32(piecesEach), 0, remoteAddresses + r, remoteLengths[r])
                if n >= 0 {
                    let inner = UInt64(max(0, Int(n) - overhead))
                    remoteCounters[r].txPackets &+= 1
                    remoteCounters[r].txBytes &+= inner
                    counters.txPackets &+= 1
                    counters.txBytes &+= inner
                } else if -n == EAGAIN || -n == ENOBUFS {
                    counters.drop(.transmitQueueFull)
                } else {
                    counters.txErrors &+= 1
                }
            }
        }
    }

    /// 4 or 6 for an IPv4/IPv6 frame (after up to two VLAN tags), nil otherwise.
    static func ipVersion(_ frame: UnsafeRawPointer, length: Int) -> Int? {
        var offset = 12
        while offset + 2 <= length {
            switch UInt16(bigEndian: frame.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) {
            case 0x0800: return 4
            case 0x86DD: return 6
            case 0x8100 where offset < 20, 0x88A8 where offset < 20: offset += 4
            default: return nil
            }
        }
        return nil
    }


    /// Queues one inner frame for its remote(s). `inPlace`: the frame stays in its buffer until
    /// the flush (VXLAN); otherwise it is copied (or sealed) into the arena first.
    @inline(__always)
    func send(_ frame: UnsafeRawPointer, length: Int, inPlace: Bool, only: Int?, socket: Int, counters: PortCounters) {
        let fanOut = only == nil ? remoteCount : 1
        if txCounts[socket] + fanOut > Self.txQueueCapacity || (arenaUsed == arenaSlots && (!inPlace || channel != nil)) {
            flush(counters: counters)
        }
        var bytes = UnsafeRawPointer(frame)
        if let channel {
            // Too big for every destination: drop before spending a counter and a seal on it.
            let largest = only.map { remoteMaxFrame[$0] } ?? largestMaxFrame
            guard length <= largest, length + SecureHandshake.dataOverhead <= arenaSlotSize else { counters.drop(.transmitTooBig); return }
            // Each remote has its own session: the frame is sealed once for each.
            var tooBig = false
            for k in 0..<fanOut {
                let r = only ?? k
                if length > remoteMaxFrame[r] { tooBig = true; continue }
                if arenaUsed == arenaSlots || txCounts[socket] == Self.txQueueCapacity { flush(counters: counters) }
                let slot = arena + arenaUsed * arenaSlotSize
                switch channel.seal(frame: UnsafeRawBufferPointer(start: frame, count: length), vni: vni, peer: r, now: sendClock,
                                    into: UnsafeMutableRawBufferPointer(start: slot, count: arenaSlotSize)) {
                case .sealed(let wire):
                    arenaUsed += 1
                    let q = socket * Self.txQueueCapacity + txCounts[socket]
                    txStarts[q] = slot
                    txLengths[q] = UInt32(wire)
                    txDestinations[q] = UnsafePointer(remoteAddresses + r)
                    txDestinationLengths[q] = remoteLengths[r]
                    txRemote[q] = Int32(r)
                    txCounts[socket] += 1
                case .noSession: counters.drop(.noSession)
                case .failed: counters.txErrors &+= 1
                }
            }
            if tooBig { counters.drop(.transmitTooBig) }
            return
        } else if !inPlace {
            guard length <= arenaSlotSize else { counters.drop(.transmitTooBig); return }
            let slot = arena + arenaUsed * arenaSlotSize
            slot.copyMemory(from: frame, byteCount: length)
            arenaUsed += 1
            bytes = UnsafeRawPointer(slot)
        }
        let base = socket * Self.txQueueCapacity
        var tooBig = false
        for k in 0..<fanOut {
            let r = only ?? k
            if length > remoteMaxFrame[r] { tooBig = true; continue }
            let q = base + txCounts[socket]
            txStarts[q] = UnsafeMutableRawPointer(mutating: bytes)
            txLengths[q] = UInt32(length)
            txDestinations[q] = UnsafePointer(remoteAddresses + r)
            txDestinationLengths[q] = remoteLengths[r]
            txRemote[q] = Int32(r)
            txCounts[socket] += 1
        }
        if tooBig { counters.drop(.transmitTooBig) }
    }

    /// Sends every queued datagram and frees the arena.
    func flush(counters: PortCounters) {
        let header = channel == nil ? UnsafeRawPointer(vxlanHeader) : nil
        let headerLength = UInt32(channel == nil ? VXLANHeader.headerLength : 0)
        for s in 0..<txFDs.count where txCounts[s] > 0 {
            let base = s * Self.txQueueCapacity
            let n = txCounts[s]
            var done = 0
            while done < n {
                let r = Int(vswitch_send_batch_to(txFDs[s], header, headerLength, txStarts + base + done, txLengths + base + done,
                                                  txDestinations + base + done, txDestinationLengths + base + done, UInt32(n - done)))
                if r > 0 {
                    for q in (base + done)..<(base + done + r) {
                        let remote = Int(txRemote[q])
                        let inner = UInt64(txLengths[q]) &- UInt64(channel == nil ? 0 : SecureHandshake.dataOverhead)
                        remoteCounters[remote].txPackets &+= 1
                        remoteCounters[remote].txBytes &+= inner
                        counters.txPackets &+= 1
                        counters.txBytes &+= inner
                    }
                    done += r
                } else if -r == EAGAIN || -r == ENOBUFS {
                    counters.drop(.transmitQueueFull, count: UInt64(n - done))
                    done = n
                } else {
                    if -r == EMSGSIZE { counters.drop(.transmitTooBig) } else { counters.txErrors &+= 1 }
                    done += 1
                }
            }
            txCounts[s] = 0
        }
        arenaUsed = 0
    }
}
