// Big-endian, unaligned field access for this module's views (VSwitchWire keeps its own helpers
// internal). Callers check lengths first; these add no bounds checks beyond the standard library's.

extension UnsafeRawBufferPointer {
    /// Reads a big-endian integer at `offset`, whatever its alignment.
    @inline(__always)
    func loadBigEndian<T: FixedWidthInteger>(fromByteOffset offset: Int, as type: T.Type) -> T {
        T(bigEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The bytes in `range`, as a buffer of their own. The range must lie within `self`.
    @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self[range])
    }
}

extension UnsafeMutableRawBufferPointer {
    /// Writes `value` big-endian at `offset`, whatever its alignment.
    @inline(__always)
    func storeBigEndian<T: FixedWidthInteger>(_ value: T, toByteOffset offset: Int) {
        storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }

    /// The bytes in `range`, as a buffer of their own. The range must lie within `self`.
    @inline(__always)
    func slice(_ range: Range<Int>) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: self[range])
    }
}
