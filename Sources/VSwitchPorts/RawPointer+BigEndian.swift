// Big-endian, unaligned field access for the ports' own header work (the Ethernet header a TUN
// port adds, ARP and neighbour discovery messages). VSwitchWire keeps its helpers internal; these
// are the same few lines over raw pointers, which is what the packet buffers hand out.
import VSwitchWire

extension UnsafeRawPointer {
    /// Reads a big-endian integer at `offset`, whatever its alignment.
    @inline(__always)
    func loadBigEndian<T: FixedWidthInteger>(fromByteOffset offset: Int = 0, as type: T.Type) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Reads a 16-byte IPv6 address at `offset`.
    @inline(__always)
    func loadIPv6Address(fromByteOffset offset: Int) -> IPv6Address {
        IPv6Address(high: loadBigEndian(fromByteOffset: offset, as: UInt64.self),
                    low: loadBigEndian(fromByteOffset: offset + 8, as: UInt64.self))
    }

    /// Reads a 6-byte MAC address at `offset`.
    @inline(__always)
    func loadMACAddress(fromByteOffset offset: Int) -> MACAddress {
        let high = UInt64(loadBigEndian(fromByteOffset: offset, as: UInt32.self))
        let low = UInt64(loadBigEndian(fromByteOffset: offset + 4, as: UInt16.self))
        return MACAddress(rawValue: high << 16 | low)
    }
}

extension UnsafeMutableRawPointer {
    /// Writes `value` big-endian at `offset`, whatever its alignment.
    @inline(__always)
    func storeBigEndian<T: FixedWidthInteger>(_ value: T, toByteOffset offset: Int = 0) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    /// Writes a 16-byte IPv6 address at `offset`.
    @inline(__always)
    func storeIPv6Address(_ address: IPv6Address, toByteOffset offset: Int) {
        storeBigEndian(address.high, toByteOffset: offset)
        storeBigEndian(address.low, toByteOffset: offset + 8)
    }

    /// Writes a MAC address as 6 bytes at `offset`.
    @inline(__always)
    func storeMACAddress(_ address: MACAddress, toByteOffset offset: Int) {
        storeBigEndian(UInt32(truncatingIfNeeded: address.rawValue >> 16), toByteOffset: offset)
        storeBigEndian(UInt16(truncatingIfNeeded: address.rawValue), toByteOffset: offset + 4)
    }
}
