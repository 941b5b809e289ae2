import VSwitchCore
import VSwitchWire

/// Packets from a TUN that wait for their next hop's MAC address, in slots allocated once.
///
/// Like Linux's per-neighbour `unres_qlen`, but shared by all destinations and tiny: 16 slots by
/// default, each large enough for a 64 KiB TSO packet and its virtio-net header (about 1 MiB in
/// all, touched only when used). A packet waits until its destination is resolved, then leaves
/// in arrival order; or until its deadline, when it is dropped. A full queue refuses new packets:
/// the ones already waiting asked first.
final class HoldQueue {
    let capacity: Int
    /// Bytes per slot: an offload header and the largest IP packet.
    let slotByteCount: Int

    /// Slot states: plain bytes, so the scans below compile to byte compares even unoptimised.
    private static let free: UInt8 = 0, waiting: UInt8 = 1, ready: UInt8 = 2
    private let storage: UnsafeMutableRawPointer
    private let states: UnsafeMutablePointer<UInt8>
    private let destinations: UnsafeMutablePointer<IPv6Address>
    private let deadlines: UnsafeMutablePointer<UInt64>
    /// Arrival order, so released packets keep it whatever slot they landed in.
    private let sequences: UnsafeMutablePointer<UInt64>
    private let packetLengths: UnsafeMutablePointer<Int>
    private let offloadLengths: UnsafeMutablePointer<Int>
    private let etherTypes: UnsafeMutablePointer<EtherType>
    /// The destination's MAC once resolved.
    private let nextHops: UnsafeMutablePointer<MACAddress>
    private var nextSequence: UInt64 = 0
    private(set) var waitingCount = 0
    private(set) var readyCount = 0

    init(capacity: Int = 16, slotByteCount: Int = VirtioNetHeader.headerLength + IPv6Header.headerLength + 65_535) {
        precondition(capacity > 0 && slotByteCount > VirtioNetHeader.headerLength)
        self.capacity = capacity
        self.slotByteCount = slotByteCount
        storage = .allocate(byteCount: capacity * slotByteCount, alignment: 16)
        states = .allocate(capacity: capacity)
        states.initialize(repeating: Self.free, count: capacity)
        destinations = .allocate(capacity: capacity)
        destinations.initialize(repeating: .unspecified, count: capacity)
        deadlines = .allocate(capacity: capacity)
        deadlines.initialize(repeating: 0, count: capacity)
        sequences = .allocate(capacity: capacity)
        sequences.initialize(repeating: 0, count: capacity)
        packetLengths = .allocate(capacity: capacity)
        packetLengths.initialize(repeating: 0, count: capacity)
        offloadLengths = .allocate(capacity: capacity)
        offloadLengths.initialize(repeating: 0, count: capacity)
        etherTypes = .allocate(capacity: capacity)
        etherTypes.initialize(repeating: .ipv4, count: capacity)
        nextHops = .allocate(capacity: capacity)
        nextHops.initialize(repeating: .zero, count: capacity)
    }

    deinit {
        storage.deallocate()
        states.deallocate()
        destinations.deallocate()
        deadlines.deallocate()
        sequences.deallocate()
        packetLengths.deallocate()
        offloadLengths.deallocate()
        etherTypes.deallocate()
        nextHops.deallocate()
    }

    /// Whether a packet already waits for `destination` (its solicitation is out).
    func isAwaiting(_ destination: IPv6Address) -> Bool {
        guard waitingCount > 0 else { return false }
        for slot in 0..<capacity where states[slot] == Self.waiting && destinations[slot] == destination { return true }
        return false
    }

    /// Copies a packet in: `offloadLength` bytes of header at `bytes`, the packet right after.
    /// False (nothing kept) when every slot is taken or the packet does not fit one.
    func hold(_ bytes: UnsafeRawPointer, offloadLength: Int, packetLength: Int, etherType: EtherType,
              destination: IPv6Address, deadline: UInt64) -> Bool {
        guard offloadLength + packetLength <= slotByteCount else { return false }
        var free = -1
        for slot in 0..<capacity where states[slot] == Self.free {
            free = slot
            break
        }
        guard free >= 0 else { return false }
        let slot = free
        (storage + slot * slotByteCount).copyMemory(from: bytes, byteCount: offloadLength + packetLength)
        states[slot] = Self.waiting
        destinations[slot] = destination
        deadlines[slot] = deadline
        sequences[slot] = nextSequence
        nextSequence &+= 1
        packetLengths[slot] = packetLength
        offloadLengths[slot] = offloadLength
        etherTypes[slot] = etherType
        waitingCount += 1
        return true
    }

    /// Marks the packets waiting for `destination` ready to leave for `mac`; returns how many.
    @discardableResult
    func resolve(_ destination: IPv6Address, to mac: MACAddress) -> Int {
        guard waitingCount > 0 else { return 0 }
        var count = 0
        for slot in 0..<capacity where states[slot] == Self.waiting && destinations[slot] == destination {
            states[slot] = Self.ready
            nextHops[slot] = mac
            count += 1
        }
        waitingCount -= count
        readyCount += count
        return count
    }

    /// Frees the waiting packets whose deadline is `now` or earlier; returns how many.
    func expire(now: UInt64) -> Int {
        guard waitingCount > 0 else { return 0 }
        var count = 0
        for slot in 0..<capacity where states[slot] == Self.waiting && deadlines[slot] <= now {
            states[slot] = Self.free
            count += 1
        }
        waitingCount -= count
        return count
    }

    /// The earliest deadline of a waiting packet.
    var nextDeadline: UInt64? {
        guard waitingCount > 0 else { return nil }
        var earliest = UInt64.max
        for slot in 0..<capacity where states[slot] == Self.waiting { earliest = min(earliest, deadlines[slot]) }
        return earliest
    }

    enum Release { case none, released, tooBig }

    /// Writes the oldest ready packet into `buffer` as a frame from `source` (Ethernet header at
    /// `frame`, the offload header, if it had one, in the bytes before), and frees its slot.
    /// `.tooBig` when the frame does not fit the buffer: the slot is freed all the same.
    func releaseOldest(into buffer: UnsafeMutablePointer<PacketBuffer>, source: MACAddress) -> Release {
        guard readyCount > 0 else { return .none }
        var oldest = -1
        for slot in 0..<capacity where states[slot] == Self.ready {
            if oldest < 0 || sequences[slot] < sequences[oldest] { oldest = slot }
        }
        states[oldest] = Self.free
        readyCount -= 1
        let h = offloadLengths[oldest], n = packetLengths[oldest]
        let start = buffer.pointee.offset - h
        guard start >= 0, buffer.pointee.offset + EthernetFrame.headerLength + n <= buffer.pointee.capacity else { return .tooBig }
        let stored = UnsafeRawPointer(storage + oldest * slotByteCount)
        buffer.pointee.base.advanced(by: start).copyMemory(from: stored, byteCount: h)
        (buffer.pointee.frame + EthernetFrame.headerLength).copyMemory(from: stored + h, byteCount: n)
        _ = EthernetRepr(destination: nextHops[oldest], source: source, etherType: etherTypes[oldest])
            .emit(into: UnsafeMutableRawBufferPointer(start: buffer.pointee.frame, count: EthernetFrame.headerLength))
        buffer.pointee.length = EthernetFrame.headerLength + n
        buffer.pointee.offloadLength = h
        return .released
    }
}
