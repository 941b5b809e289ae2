/// Seals frames into secure-mode datagrams and opens datagrams back into frames, for one port.
///
/// The layout and the checks are described at the top of SecureHeader.swift. A channel holds the
/// port's key ring, its sender id and counter, and the replay windows of the senders it hears. It
/// does no I/O: the port reads and writes datagrams, the channel only transforms bytes in buffers
/// the caller owns.
///
/// Threading: a channel belongs to the data-plane thread that owns its port, like the port; it is
/// a class so that its counter cannot be duplicated by copying (a copy sealing with the same
/// sender id and counter would reuse nonces). New keys arrive as a `SecureKeyRing` value (Sendable)
/// handed to that thread and assigned to `keys`; the counter and the replay windows carry on.
public final class SecureChannel {
    /// The sender id in every datagram this channel seals; random unless given.
    public let senderID: UInt32

    /// The counter the next sealed datagram will carry: starts at 1, never wraps.
    public internal(set) var nextCounter: UInt64 = 1

    /// The keys: `current` seals, both open. Assigning takes effect with the next datagram.
    public var keys: SecureKeyRing {
        didSet { install(keys) }
    }

    /// The AEAD every key of the ring is used with; named in byte 3 of every datagram.
    public let cipher: SecureCipher

    /// The current key, expanded, and its id: seals, and opens first.
    private var sealer: AEAD
    private var currentID: UInt8
    /// The previous key, expanded, and its id, if the ring has one: opens only.
    private var previous: AEAD?
    private var previousID: UInt8?
    private var replay: ReplayTable

    /// A channel sealing with `keys.current` and `cipher` under `senderID` (by default a fresh
    /// random one, as every port start should use), remembering `replayCapacity` senders.
    public init(keys: SecureKeyRing, cipher: SecureCipher = .default, senderID: UInt32 = .random(in: .min ... .max),
                replayCapacity: Int = ReplayTable.defaultCapacity) {
        self.keys = keys
        self.cipher = cipher
        self.senderID = senderID
        sealer = AEAD(keys.current, cipher: cipher)
        currentID = keys.current.id
        previous = keys.previous.map { AEAD($0, cipher: cipher) }
        previousID = keys.previous?.id
        replay = ReplayTable(capacity: replayCapacity)
    }

    private func install(_ keys: SecureKeyRing) {
        sealer = AEAD(keys.current, cipher: cipher)
        currentID = keys.current.id
        previous = keys.previous.map { AEAD($0, cipher: cipher) }
        previousID = keys.previous?.id
    }

    /// True once the counter has reached 2^64 - 1: the channel seals nothing more, and the port
    /// must be recreated (with a new sender id) to send again.
    public var isExhausted: Bool { nextCounter == .max }

    /// Seals `frame` for network `vni` into `datagram` and returns the datagram's length
    /// (`frame.count` + 36), or returns nil if `datagram` is too small, `vni` does not fit in 24
    /// bits, or the channel is exhausted. The frame may already sit at offset 20 of `datagram`
    /// (encapsulation in the headroom); otherwise it is copied there first.
    public func seal(frame: UnsafeRawBufferPointer, vni: UInt32, into datagram: UnsafeMutableRawBufferPointer) -> Int? {
        let length = SecureHeader.overhead + frame.count
        guard !isExhausted, vni <= VXLANHeader.maximumVNI, datagram.count >= length else { return nil }
        let counter = nextCounter
        nextCounter += 1  // consumed even if sealing fails below: a nonce is never offered twice

        let header = SecureHeaderRepr(type: .frame, keyID: currentID, cipher: cipher, senderID: senderID, counter: counter)
        _ = header.emit(into: datagram)
        let plaintextStart = SecureHeader.headerLength
        datagram.storeBigEndian(vni, toByteOffset: plaintextStart)
        let frameStart = plaintextStart + SecureHeader.vniLength
        if frame.count > 0, frame.baseAddress != UnsafeRawPointer(datagram.baseAddress! + frameStart) {
            datagram.slice(frameStart..<frameStart + frame.count).copyMemory(from: frame)
        }
        let readable = UnsafeRawBufferPointer(datagram)
        let sealed = sealer.seal(readable.slice(plaintextStart..<frameStart + frame.count),
                                 nonce: readable.slice(SecureHeader.Field.nonce),
                                 authenticating: readable.slice(0..<SecureHeader.headerLength),
                                 into: datagram.slice(SecureHeader.Field.nonce.lowerBound..<length))
        return sealed ? length : nil
    }

    /// Opens `datagram`, writing the inner frame at the start of `frame`: `.frame(byteCount:vni:)`
    /// if it authenticated and is new, otherwise `.dropped(reason)`, and then nothing is delivered
    /// (`frame` is only written once the datagram has authenticated). Never traps, whatever the
    /// datagram holds; a drop before the AEAD step allocates nothing.
    ///
    /// `frameHasHeadroom`: the 4 bytes before `frame` may be written too (a packet buffer's
    /// headroom); the datagram is then decrypted straight into place, with no copy after.
    public func open(datagram: UnsafeRawBufferPointer, into frame: UnsafeMutableRawBufferPointer,
                     frameHasHeadroom: Bool = false) -> SecureOpenResult {
        guard let view = SecureHeader(validating: datagram) else { return .dropped(.truncated) }
        guard view.magicAndVersion == SecureHeader.magicAndVersion else { return .dropped(.badVersion) }
        guard view.type == .frame else { return .dropped(.unknownType) }
        guard view.cipher == cipher.rawValue else { return .dropped(.cipherMismatch) }
        let keyID = view.keyID
        let tryCurrent = keyID == currentID, tryPrevious = keyID == previousID
        guard tryCurrent || tryPrevious else { return .dropped(.unknownKey) }
        let sender = view.senderID
        guard sender != senderID else { return .dropped(.reflected) }
        let counter = view.counter
        guard replay.check(sender: sender, keyID: keyID, counter: counter) else { return .dropped(.replayed) }
        let frameLength = view.frameLength
        guard frame.count >= frameLength else { return .dropped(.frameTooLarge) }

        if frameHasHeadroom, let start = frame.baseAddress {
            // VNI and frame land where they belong: the VNI in the headroom, the frame at `frame`.
            let out = start - SecureHeader.vniLength
            let capacity = frame.count + SecureHeader.vniLength
            var opened = tryCurrent ? sealer.open(view.combined, authenticating: view.header, into: out, capacity: capacity) : nil
            if opened == nil, tryPrevious, let previous {
                opened = previous.open(view.combined, authenticating: view.header, into: out, capacity: capacity)
            }
            guard opened == frameLength + SecureHeader.vniLength else { return .dropped(.authenticationFailed) }
            guard replay.accept(sender: sender, keyID: keyID, counter: counter) else { return .dropped(.replayed) }
            let vni = UInt32(bigEndian: UnsafeRawPointer(out).loadUnaligned(as: UInt32.self)) & VXLANHeader.maximumVNI
            return .frame(byteCount: frameLength, vni: vni)
        }
        func deliver(_ plaintext: UnsafeRawBufferPointer) -> UInt32 {
            if frameLength > 0 { frame.copyMemory(from: plaintext.slice(SecureHeader.vniLength..<plaintext.count)) }
            return plaintext.loadBigEndian(fromByteOffset: 0, as: UInt32.self) & VXLANHeader.maximumVNI
        }
        var vni: UInt32?
        if tryCurrent { vni = sealer.open(view.combined, authenticating: view.header, deliver) }
        if vni == nil, tryPrevious, let previous {
            vni = previous.open(view.combined, authenticating: view.header, deliver)
        }
        guard let vni else { return .dropped(.authenticationFailed) }
        guard replay.accept(sender: sender, keyID: keyID, counter: counter) else { return .dropped(.replayed) }
        return .frame(byteCount: frameLength, vni: vni)
    }
}

/// What `SecureChannel.open` made of a datagram.
public enum SecureOpenResult: Equatable, Sendable {
    /// A new, authentic frame of `byteCount` bytes, now at the start of the caller's buffer, for
    /// network `vni`.
    case frame(byteCount: Int, vni: UInt32)
    /// Nothing delivered, for this reason.
    case dropped(SecureDropReason)
}

/// Why a secure datagram was dropped, in the order the checks run. Each is a counter of the port.
public enum SecureDropReason: String, CaseIterable, Sendable {
    /// Shorter than 36 bytes (header, VNI and tag).
    case truncated
    /// Byte 0 is not 0xA1: another protocol (VXLAN?) or another version.
    case badVersion
    /// A datagram type this version does not know.
    case unknownType
    /// Sealed with another cipher (byte 3): the two ends are configured differently.
    case cipherMismatch
    /// No key of the ring has the datagram's key id: a peer on another key, or noise.
    case unknownKey
    /// The datagram carries this channel's own sender id: its own traffic sent back to it.
    case reflected
    /// Counter 0, already received, or too far behind the sender's newest (older than the window).
    case replayed
    /// The frame is larger than the buffer given to `open`.
    case frameTooLarge
    /// The tag did not verify: forged or corrupted, or sealed with another key of the same id.
    case authenticationFailed
}

extension SecureDropReason: CustomStringConvertible {
    /// The raw value: `authenticationFailed`.
    public var description: String { rawValue }
}
