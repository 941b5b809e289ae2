/// One frame in a buffer from a `PacketPool`.
///
/// The frame occupies `base[offset ..< offset + length]`. `offloadLength` bytes of offload
/// metadata (a virtio-net header from a TAP opened with IFF_VNET_HDR) sit immediately before it,
/// in the headroom, so a frame can go out to another such port with its header intact without a copy.
public struct PacketBuffer {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int
    public var offset: Int
    public var length: Int
    public var offloadLength: Int

    @inlinable
    public init(base: UnsafeMutableRawPointer, capacity: Int, offset: Int) {
        self.base = base
        self.capacity = capacity
        self.offset = offset
        self.length = 0
        self.offloadLength = 0
    }

    /// Start of the Ethernet frame.
    @inlinable public var frame: UnsafeMutableRawPointer { base + offset }

    /// The frame as bytes.
    @inlinable public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + offset, count: length) }
}
