import VSwitchCore
import VSwitchWire

/// Userspace GRO over a batch: merges runs of consecutive TCP segments of one flow, adjacent in
/// the batch, into one superframe with a virtio-net header (NEEDS_CSUM + TSO), so a TAP opened
/// with IFF_VNET_HDR and TSO takes a whole run with one write instead of one write per segment.
/// The tunnel port calls it on what it receives (`UDPTunnelPort+Receive`): a sender's TSO
/// superframe arrives as up to 45 datagrams and leaves as one frame again.
///
/// Which frames merge, and what the merged headers say, are the wire rules of
/// `TCPSegmentMerge` (VSwitchWire, beside `GSOSegmenter`, its inverse). This walks the batch:
/// frame i+1 continues frame i's run (no flow table); the run grows while the rules allow and
/// the result fits `maxLength`, the first buffer's capacity, the IP length field (65,535) and
/// `maxSegments`. A segment's TCP checksum is verified as its payload is copied (one pass),
/// unless its header vouches for it or `verifyChecksums` is false; a run of one frame is left
/// untouched (header or not). The merged frame gets its virtio-net header in the 10 bytes
/// before it (`offloadLength` 10).
///
/// The batch is compacted: kept frames stay in order in `buffers[first ..< count]`; the buffer
/// structs of absorbed frames are moved past `count`, so every buffer stays in the array exactly
/// once. Buffer memory never moves; only payload bytes are copied. Nothing allocates.
public enum TCPCoalescer {
    /// The largest merged Ethernet frame by default: an IPv4 packet of 65,535 bytes plus Ethernet.
    public static let defaultMaxLength = 65_535 + EthernetFrame.headerLength
    /// At most this many segments in one superframe by default (a bound in the spirit of GRO's,
    /// which stops a flow's superframe at a fixed number of fragments).
    public static let defaultMaxSegments = 64

    /// Merges runs in `batch.buffers[first ..< batch.count]` as described above and returns the
    /// number of frames removed from the batch (`batch.count` is lowered by that much).
    @discardableResult
    public static func coalesce(_ batch: PacketBatch, from first: Int = 0, maxLength: Int = defaultMaxLength,
                                maxSegments: Int = defaultMaxSegments, verifyChecksums: Bool = true) -> Int {
        let count = batch.count
        guard first >= 0, first < count - 1, maxSegments >= 2 else { return 0 }
        let buffers = batch.buffers
        var write = first
        var read = first
        while read < count {
            let runLength = mergeRun(buffers, at: read, end: count, maxLength: maxLength, maxSegments: maxSegments,
                                     verifyChecksums: verifyChecksums)
            if write != read {
                let kept = buffers[read]
                buffers[read] = buffers[write]
                buffers[write] = kept
            }
            write += 1
            read += runLength
        }
        batch.count = write
        return count - write
    }

    /// Merges the frames after `buffers[start]` that continue its run into it and returns how many
    /// frames the run took (1: nothing merged, the frame untouched).
    @inline(__always)
    private static func mergeRun(_ buffers: UnsafeMutablePointer<PacketBuffer>, at start: Int, end: Int,
                                 maxLength: Int, maxSegments: Int, verifyChecksums: Bool) -> Int {
        guard start + 1 < end, let head = segment(buffers[start]), head.canHeadRun else { return 1 }
        let headBuffer = buffers + start
        guard headBuffer.pointee.offset >= VirtioNetHeader.headerLength else { return 1 }
        let frameLimit = min(maxLength, headBuffer.pointee.capacity - headBuffer.pointee.offset, head.maximumMergedLength)
        let frame = headBuffer.pointee.frame
        var length = headBuffer.pointee.length
        var previous = head
        var taken = 1
        var segments = head.segmentCount
        var headVerified = head.trusted || !verifyChecksums
        while start + taken < end, segments < maxSegments {
            guard let next = segment(buffers[start + taken]),
                  length + next.payloadLength <= frameLimit,
                  TCPSegmentMerge.continues(next, after: previous, head: head)
            else { break }
            if !headVerified {
                guard TCPSegmentMerge.checksumIsValid(head) else { return 1 }
                headVerified = true
            }
            let payload = next.frame.baseAddress! + next.payloadOffset
            if !next.trusted && verifyChecksums {
                // Copy and sum the payload in one pass; a bad checksum leaves the copy past
                // `length`, where nothing reads it.
                let payloadSum = InternetChecksum.copySumming(to: frame + length, from: payload, count: next.payloadLength)
                guard TCPSegmentMerge.checksumIsValid(next, payloadSum: payloadSum) else { break }
            } else {
                (frame + length).copyMemory(from: payload, byteCount: next.payloadLength)
            }
            length += next.payloadLength
            previous = next
            taken += 1
            segments += 1
            if TCPSegmentMerge.endsRun(next, head: head) { break }
        }
        guard taken > 1 else { return 1 }

        headBuffer.pointee.length = length
        let header = TCPSegmentMerge.completeMerge(UnsafeMutableRawBufferPointer(start: frame, count: length), head: head,
                                                   lastFlags: previous.flags)
        header.store(to: frame - VirtioNetHeader.headerLength)
        headBuffer.pointee.offloadLength = VirtioNetHeader.headerLength
        return taken
    }

    /// The frame in `buffer` as a mergeable TCP segment, or nil: its bounds must be sane, and its
    /// offload metadata none or a virtio-net header.
    @inline(__always)
    private static func segment(_ buffer: PacketBuffer) -> TCPSegmentMerge.Segment? {
        let length = buffer.length
        guard buffer.offset >= 0, buffer.offset <= buffer.capacity, length >= 0, length <= buffer.capacity - buffer.offset
        else { return nil }
        let offload: VirtioNetHeader?
        switch buffer.offloadLength {
        case 0:
            offload = nil
        case VirtioNetHeader.headerLength:
            guard buffer.offset >= VirtioNetHeader.headerLength else { return nil }
            offload = VirtioNetHeader(loadingFrom: buffer.frame - VirtioNetHeader.headerLength)
        default:
            return nil
        }
        return TCPSegmentMerge.Segment(validating: UnsafeRawBufferPointer(start: buffer.frame, count: length), offload: offload)
    }
}
