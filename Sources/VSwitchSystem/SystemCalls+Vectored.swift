#if canImport(Glibc)
import Glibc
#endif

extension SystemCalls {
    /// writev(2) on a non-blocking fd; EINTR retried. For a device that takes one packet per write
    /// (a TUN), the pieces become one packet: a header built aside and a payload left in place in
    /// a buffer that other ports may still be reading.
    @inline(__always)
    public static func writev(_ fd: Int32, _ vectors: UnsafePointer<iovec>, _ count: Int) -> IOResult {
        while true {
            let n = Glibc.writev(fd, vectors, Int32(count))
            if n >= 0 { return .transferred(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }
}
