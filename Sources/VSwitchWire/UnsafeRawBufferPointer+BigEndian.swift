// Big-endian, unaligned field access shared by every view and Repr, and by the modules above
// (the tunnel's formats, the ports' own header work): one set, public and inlinable, so a call
// from another module costs what a call from here does.
//
// Callers have already checked the length (a view in `init?(validating:)`, a Repr's emit against its
// header length), so these do no bounds checks of their own beyond the standard library's debug ones.

extension UnsafeRawBufferPointer {
    /// Reads a big-endian integer at `offset`, whatever its alignment.
    @inlinable @inline(__always)
    public func loadBigEndian<T: FixedWidthInteger>(fromByteOffset offset: Int, as type: T.Type) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Reads a 6-byte MAC address at `offset` as one 32-bit and one 16-bit load.
    @inlinable @inline(__always)
    public func loadMACAddress(fromByteOffset offset: Int) -> MACAddress {
        let high = UInt64(loadBigEndian(fromByteOffset: offset, as: UInt32.self))
        let low = UInt64(loadBigEndian(fromByteOffset: offset + 4, as: UInt16.self))
        return MACAddress(rawValue: high << 16 | low)
    }

    /// The bytes in `range`, as a buffer of their own. The range must lie within `self`.
    @inlinable @inline(__always)
    public func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Writes `value` big-endian at `offset`, whatever its alignment.
    @inlinable @inline(__always)
    public func storeBigEndian<T: FixedWidthInteger>(_ value: T, toByteOffset offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    /// Writes a MAC address as 6 bytes at `offset`.
    @inlinable @inline(__always)
    public func storeMACAddress(_ address: MACAddress, toByteOffset offset: Int) {
        storeBigEndian(UInt32(truncatingIfNeeded: address.rawValue >> 16), toByteOffset: offset)
        storeBigEndian(UInt16(truncatingIfNeeded: address.rawValue), toByteOffset: offset + 4)
    }
}

extension UnsafeRawPointer {
    /// Reads a big-endian integer at `offset`, whatever its alignment.
    @inlinable @inline(__always)
    public func loadBigEndian<T: FixedWidthInteger>(fromByteOffset offset: Int = 0, as type: T.Type) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// Reads a 16-byte IPv6 address at `offset`.
    @inlinable @inline(__always)
    public func loadIPv6Address(fromByteOffset offset: Int) -> IPv6Address {
        IPv6Address(high: loadBigEndian(fromByteOffset: offset, as: UInt64.self),
                    low: loadBigEndian(fromByteOffset: offset + 8, as: UInt64.self))
    }

    /// Reads a 6-byte MAC address at `offset`.
    @inlinable @inline(__always)
    public func loadMACAddress(fromByteOffset offset: Int) -> MACAddress {
        let high = UInt64(loadBigEndian(fromByteOffset: offset, as: UInt32.self))
        let low = UInt64(loadBigEndian(fromByteOffset: offset + 4, as: UInt16.self))
        return MACAddress(rawValue: high << 16 | low)
    }
}

extension UnsafeMutableRawPointer {
    /// Writes `value` big-endian at `offset`, whatever its alignment.
    @inlinable @inline(__always)
    public func storeBigEndian<T: FixedWidthInteger>(_ value: T, toByteOffset offset: Int = 0) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    /// Writes a 16-byte IPv6 address at `offset`.
    @inlinable @inline(__always)
    public func storeIPv6Address(_ address: IPv6Address, toByteOffset offset: Int) {
        storeBigEndian(address.high, toByteOffset: offset)
        storeBigEndian(address.low, toByteOffset: offset + 8)
    }

    /// Writes a MAC address as 6 bytes at `offset`.
    @inlinable @inline(__always)
    public func storeMACAddress(_ address: MACAddress, toByteOffset offset: Int) {
        storeBigEndian(UInt32(truncatingIfNeeded: address.rawValue >> 16), toByteOffset: offset)
        storeBigEndian(UInt16(truncatingIfNeeded: address.rawValue), toByteOffset: offset + 4)
    }
}

// MARK: - Text helpers for descriptions and address parsing (not on any hot path)

/// `value` as `0x` and `digits` lowercase hex digits, zero-padded: `hexString(0x88cc, digits: 4)` is `0x88cc`.
func hexString<T: FixedWidthInteger & UnsignedInteger>(_ value: T, digits: Int) -> String {
    let hex = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - hex.count)) + hex
}

/// The value of one ASCII hex digit, either case; nil for anything else.
func hexDigitValue(_ character: UInt8) -> UInt8? {
    switch character {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return character - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return character - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return character - UInt8(ascii: "A") + 10
    default: return nil
    }
}

/// The lowercase ASCII hex digit for `nibble` (0...15).
func hexDigit(_ nibble: UInt8) -> UInt8 {
    nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
}
