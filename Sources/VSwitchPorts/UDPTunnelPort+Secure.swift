#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchSystem
import VSwitchTunnel
import VSwitchWire

/// The secure mode's side of the port: the engine's outbox sent, its timers run, the handshake
/// socket read within its budget, what `show` says of each remote, key reloads and VM generation
/// changes. The engine itself (`SecureTunnel`) does no I/O.
extension UDPTunnelPort {
    /// A secure remote as `show` describes it.
    public struct PeerStatus: Sendable, Equatable {
        public var publicKey: String
        /// Where datagrams to it go now (the configured address until it roams).
        public var endpoint: String
        /// Seconds since the latest handshake completed; nil if none has.
        public var sinceHandshakeSeconds: Double?
        /// Whether a session seals frames to it now.
        public var established: Bool
    }

    /// The secure remotes, in the order of `remotes` (on the data-plane thread); empty for VXLAN.
    public func peerStatus() -> [PeerStatus] {
        guard let channel else { return [] }
        return channel.status(now: SystemCalls.monotonicNanoseconds()).enumerated().map { i, s in
            PeerStatus(publicKey: s.publicKey.base64, endpoint: UDPEndpoint.text(of: remoteAddresses + i),
                       sinceHandshakeSeconds: s.sinceHandshake.map { Double($0) / 1e9 }, established: s.established)
        }
    }

    /// New keys from the key files (SIGHUP, on the data-plane thread): a changed private or
    /// pre-shared key ends every session and starts new handshakes.
    public func reloadKeys(privateKey: SecurePrivateKey, presharedKey: SecureKey?) {
        guard let channel else { return }
        channel.reload(privateKey: privateKey, presharedKey: presharedKey, now: SystemCalls.monotonicNanoseconds())
        sendOutbox()
    }

    /// Ends every secure session and starts new handshakes (on the data-plane thread): after a
    /// VM generation change (a restored snapshot), no session this process held may seal again.
    public func forgetSessions() {
        guard let channel else { return }
        channel.forgetSessions(now: SystemCalls.monotonicNanoseconds())
        sendOutbox()
    }


    // MARK: - Timers (secure mode)

    public var isTimed: Bool { channel != nil }
    public var nextDeadline: UInt64? { channel == nil ? nil : lastService &+ SecureTunnel.serviceInterval }

    public func service(now: UInt64, counters: PortCounters) {
        guard let channel else { return }
        lastService = now
        channel.service(now: now)
        sendOutbox()
        // A paused handshake socket is read again once the budget has refilled a little.
        if handshakesPaused, let poll = handshakePoll, hsFD >= 0 {
            refillHandshakeTokens(now: now)
            if handshakeTokens >= 1, (try? poll.add(hsFD, token: 1)) != nil { handshakesPaused = false }
        }
    }

    func refillHandshakeTokens(now: UInt64) {
        let elapsed = Double(now &- handshakeTokensAt) / 1e9
        handshakeTokens = min(Self.handshakeBurst, handshakeTokens + elapsed * Self.handshakeRate)
        handshakeTokensAt = now
    }

    /// Reads and handles what the handshake socket holds, within the budget; past it, stops
    /// watching the socket until the next timer tick (the kernel drops what does not fit its
    /// small queue, at no cost to the data).
    func receiveHandshakes(clock: UInt64, counters: PortCounters) {
        guard let channel, hsFD >= 0, !handshakesPaused else { return }
        refillHandshakeTokens(now: clock)
        let frame = UnsafeMutableRawBufferPointer(start: hsSlab + Self.hsMessages * 256, count: 2048)
        while handshakeTokens >= 1 {
            let n = Int(vswitch_recv_batch(hsFD, hsStarts, hsCapacities, hsLengths, hsSources, hsSegments,
                                           UInt32(min(Self.hsMessages, Int(handshakeTokens)))))
            if n <= 0 { return }
            for i in 0..<n {
                handshakeTokens -= 1
                guard hsLengths[i] != UInt32.max else { counters.drop(.tunnelMalformed); continue }
                let source = UnsafePointer(hsSources + i)
                let sourceLength = UInt32(Int32(source.pointee.ss_family) == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
                switch channel.open(datagram: UnsafeRawBufferPointer(start: hsStarts[i], count: Int(hsLengths[i])), from: source,
                                    sourceLength: sourceLength, now: clock, into: frame, frameHasHeadroom: false) {
                case .dropped(let reason): counters.drop(Self.dropReason(reason))
                case .frame: counters.drop(.tunnelMalformed)  // data never comes this way
                case .consumed: break
                }
            }
        }
        if let poll = handshakePoll {
            poll.remove(hsFD)
            handshakesPaused = true
        }
    }

    /// Sends the handshake messages, cookie replies and keepalives the engine queued.
    func sendOutbox() {
        guard let channel, channel.outboxCount > 0, let fd = txFDs.first else { channel?.clearOutbox(); return }
        for i in 0..<channel.outboxCount {
            let m = channel.outboxMessage(i)
            _ = m.destination.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, m.bytes.baseAddress, m.bytes.count, Int32(MSG_DONTWAIT), $0, m.length)
            }
        }
        channel.clearOutbox()
    }


    static func dropReason(_ r: SecureDropReason) -> DropReason {
        switch r {
        case .malformed, .frameTooLarge: .tunnelMalformed
        case .unknownSession: .unknownSession
        case .cipherMismatch: .cipherMismatch
        case .replayed: .replayed
        case .authenticationFailed: .authenticationFailed
        case .handshakeInvalid: .handshakeInvalid
        case .unknownPeer: .unknownPeer
        case .handshakeLimited: .handshakeLimited
        }
    }
}
