import VSwitchCore

/// The small frames a TUN port makes up itself (ARP replies and requests, neighbour
/// advertisements and solicitations), waiting for the port's next `receive` to hand them to the
/// switch: a FIFO of fixed 128-byte slots allocated once. 32 slots is more than the answers one
/// batch of 64 flooded frames can ask for in practice; when it is full, a new frame is refused
/// and the caller counts it.
final class ControlFrameQueue {
    let capacity: Int
    /// Large enough for the largest frame made here: 86 bytes (Ethernet, IPv6, a neighbour
    /// solicitation or advertisement with its link-layer address option).
    static let slotByteCount = 128

    private let storage: UnsafeMutableRawPointer
    private let lengths: UnsafeMutablePointer<Int>
    private var head = 0
    private(set) var count = 0

    init(capacity: Int = 32) {
        precondition(capacity > 0)
        self.capacity = capacity
        storage = .allocate(byteCount: capacity * Self.slotByteCount, alignment: 16)
        lengths = .allocate(capacity: capacity)
        lengths.initialize(repeating: 0, count: capacity)
    }

    deinit {
        storage.deallocate()
        lengths.deallocate()
    }

    /// Lets `build` write a frame (at most `slotByteCount` bytes, zeroed beforehand) into the next
    /// slot; `build` returns its length, or 0 to keep nothing. False when the queue is full.
    @inline(__always)
    func append(_ build: (UnsafeMutableRawPointer) -> Int) -> Bool {
        guard count < capacity else { return false }
        let slot = (head + count) % capacity
        let bytes = storage + slot * Self.slotByteCount
        bytes.initializeMemory(as: UInt8.self, repeating: 0, count: Self.slotByteCount)
        let length = build(bytes)
        guard length > 0 else { return true }
        precondition(length <= Self.slotByteCount)
        lengths[slot] = length
        count += 1
        return true
    }

    /// Moves the oldest frame into `buffer` (a plain frame: no offload header). False when empty.
    @inline(__always)
    func pop(into buffer: UnsafeMutablePointer<PacketBuffer>) -> Bool {
        guard count > 0 else { return false }
        let length = lengths[head]
        buffer.pointee.frame.copyMemory(from: storage + head * Self.slotByteCount, byteCount: length)
        buffer.pointee.length = length
        buffer.pointee.offloadLength = 0
        head = (head + 1) % capacity
        count -= 1
        return true
    }
}
