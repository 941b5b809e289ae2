// VSwitchSystem: the thin layer over Linux syscalls that the data plane and the ports use.
//
// Rules:
// - Every syscall is wrapped in one place; EINTR is retried there and nowhere else.
// - On the packet path EAGAIN is a value (`IOResult.wouldBlock`), not a thrown error: a
//   non-blocking fd running dry is the normal end of a batch, and throwing per batch would cost.
// - Errors carry the errno and the operation (`SystemError`), and print like `strerror`.
// - No Foundation: this module is linked into the data plane.
#if canImport(Glibc)
import Glibc
@_exported import CVSwitchLinux
#endif

/// A failed syscall: the operation that failed and the kernel's errno.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// The calling thread's errno, captured right after a failed call.
    public static func last(_ operation: String) -> SystemError {
        SystemError(operation, errno: Glibc.errno)
    }

    public var reason: String { String(cString: strerror(errno)) }
    public var description: String { "\(operation): \(reason)" }
}

/// The outcome of one non-blocking read or write.
public enum IOResult: Equatable, Sendable {
    case transferred(Int)
    case wouldBlock
    case failed(Int32)
}

public enum SystemCalls {
    /// read(2) on a non-blocking fd; EINTR retried.
    @inline(__always)
    public static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> IOResult {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return .transferred(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    /// write(2) on a non-blocking fd; EINTR retried.
    @inline(__always)
    public static func write(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> IOResult {
        while true {
            let n = Glibc.write(fd, buffer, count)
            if n >= 0 { return .transferred(n) }
            let e = Glibc.errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)  // never retried: Linux releases the fd even on EINTR
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    @inline(__always)
    public static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
