// Checksum completion: turning a checksum-partial frame, as a TAP hands it over with NEEDS_CSUM,
// into a plain frame that a port without offloads can send.
//
// Linux leaves the TCP/UDP checksum field holding the folded pseudo-header sum (not complemented)
// and records where the checksummed region starts. Whoever finishes the job sums everything from
// csum_start to the end of the frame, the field included, and stores the complement in the field:
// the pseudo-header rides along inside the field. That is `skb_checksum_help`, which this mirrors,
// down to storing 0xffff for a computed 0 (`CSUM_MANGLED_0`: for UDP, 0 means "no checksum"; for
// TCP 0xffff is the same value in one's complement).

extension VirtioNetHeader {
    /// Completes the checksum of `frame` in place as described by the header, and on success
    /// clears `needsChecksum` (and zeroes `checksumStart`/`checksumOffset`), so storing the header
    /// back in front of the frame tells later readers there is nothing left to do.
    ///
    /// Returns true if the frame is now complete: it was done, or there was nothing to do (no
    /// `needsChecksum`). Returns false, changing nothing, for a superframe (`gsoType` is not none:
    /// segment it with `GSOSegmenter` instead) or when the checksum field, at `checksumStart +
    /// checksumOffset`, does not lie wholly within the frame: the header is invalid.
    public mutating func completeChecksum(in frame: UnsafeMutableRawBufferPointer) -> Bool {
        guard gsoType.withoutECN == .none else { return false }
        guard flags.contains(.needsChecksum) else { return true }
        guard Self.completeChecksum(in: frame, start: Int(checksumStart), offset: Int(checksumOffset)) else { return false }
        flags.remove(.needsChecksum)
        checksumStart = 0
        checksumOffset = 0
        return true
    }

    /// True if a checksum field at `start + offset` lies within `length` bytes, as the kernel
    /// requires of `csum_start`/`csum_offset` (`skb_partial_csum_set`).
    @inline(__always)
    static func checksumFieldFits(start: Int, offset: Int, length: Int) -> Bool {
        start >= 0 && offset >= 0 && start + offset + 2 <= length
    }

    /// `skb_checksum_help`: sums `frame[start...]` (the field at `start + offset` holding the
    /// pseudo-header sum) and stores the checksum in that field. False, writing nothing, if the
    /// field does not fit.
    static func completeChecksum(in frame: UnsafeMutableRawBufferPointer, start: Int, offset: Int) -> Bool {
        guard checksumFieldFits(start: start, offset: offset, length: frame.count) else { return false }
        let checksum = InternetChecksum.compute(UnsafeRawBufferPointer(rebasing: frame[start...]))
        frame.storeBigEndian(checksum == 0 ? 0xffff : checksum, toByteOffset: start + offset)
        return true
    }
}
