#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchCore
import VSwitchSystem

/// Frames through a descriptor that puts a 10-byte virtio-net header before each one, both ways:
/// a TAP opened with IFF_VNET_HDR, or a packet socket with PACKET_VNET_HDR. One read or write per
/// frame, superframes of up to 64 KiB included; the header lives in the buffer's headroom.
enum VnetHeaderIO {
    static let headerLength = Int(VSWITCH_VNET_HDR_LEN)

    /// Reads frames from `fd` until the batch is full or the descriptor has no more.
    @inline(__always)
    static func receive(_ fd: Int32, into batch: PacketBatch, counters: PortCounters) {
        let h = headerLength
        while !batch.isFull {
            let b = batch.next
            // The virtio-net header lands in the headroom, the frame at the usual offset.
            let start = b.pointee.offset - h
            let room = b.pointee.capacity - start
            switch SystemCalls.read(fd, b.pointee.base + start, room) {
            case .transferred(let n):
                if n < h { counters.drop(.runt); continue }
                if n == room { counters.drop(.oversize); continue }  // possibly truncated by the kernel
                b.pointee.length = n - h
                b.pointee.offloadLength = h
                batch.commit()
            case .wouldBlock:
                return
            case .failed:
                counters.rxErrors &+= 1
                return
            }
        }
    }

    /// Writes the frames at `indices` to `fd`, each behind its virtio-net header.
    @inline(__always)
    static func transmit(_ fd: Int32, _ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        for i in 0..<count {
            let b = batch.buffers + Int(indices[i])
            withHeader(b)
            write(fd, UnsafeRawPointer(b.pointee.frame - headerLength), frameLength: b.pointee.length, counters: counters)
        }
    }

    /// Makes sure a virtio-net header precedes the frame: a frame from a port without offloads
    /// gets a zero header ("plain frame, checksums done").
    @inline(__always)
    static func withHeader(_ b: UnsafeMutablePointer<PacketBuffer>) {
        let h = headerLength
        if b.pointee.offloadLength != h {
            (b.pointee.frame - h).initializeMemory(as: UInt8.self, repeating: 0, count: h)
            b.pointee.offloadLength = h
        }
    }

    /// One write of a header and the `frameLength`-byte frame after it.
    @inline(__always)
    static func write(_ fd: Int32, _ bytes: UnsafeRawPointer, frameLength: Int, counters: PortCounters) {
        switch SystemCalls.write(fd, bytes, frameLength + headerLength) {
        case .transferred:
            counters.txPackets &+= 1
            counters.txBytes &+= UInt64(frameLength)
        case .wouldBlock:
            counters.drop(.transmitQueueFull)
        case .failed(let e):
            if e == EMSGSIZE { counters.drop(.transmitTooBig) } else { counters.txErrors &+= 1 }
        }
    }
}
