#if canImport(Glibc)
import Glibc
@_exported import CVSwitchLinux
#endif

/// An epoll instance, level-triggered. Each registration carries a 64-bit token (the data plane
/// uses the port number) that comes back with the readiness event.
public final class Epoll {
    public let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    public let capacity: Int

    public init(capacity: Int = 64) throws {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError.last("epoll_create1") }
        self.fd = fd
        self.capacity = capacity
        self.events = .allocate(capacity: capacity)
    }

    deinit {
        events.deallocate()
        SystemCalls.close(fd)
    }

    public func add(_ target: Int32, token: UInt64) throws {
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = token
        guard epoll_ctl(fd, EPOLL_CTL_ADD, target, &ev) == 0 else { throw SystemError.last("epoll_ctl(ADD)") }
    }

    public func remove(_ target: Int32) {
        var ev = epoll_event()
        _ = epoll_ctl(fd, EPOLL_CTL_DEL, target, &ev)
    }

    /// Waits up to `timeoutMilliseconds` (-1 forever). Returns the number of ready fds, whose
    /// tokens are `token(at: 0 ..< n)`. EINTR counts as zero events.
    @inline(__always)
    public func wait(timeoutMilliseconds: Int32) -> Int {
        let n = epoll_wait(fd, events, Int32(capacity), timeoutMilliseconds)
        return n <= 0 ? 0 : Int(n)
    }

    @inline(__always)
    public func token(at index: Int) -> UInt64 { events[index].data.u64 }
}

/// An eventfd used as a doorbell: other threads `signal()`, the owner wakes in epoll and `drain()`s.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32

    public init() throws {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError.last("eventfd") }
        self.fd = fd
    }

    deinit { SystemCalls.close(fd) }

    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { SystemCalls.write(fd, $0.baseAddress!, 8) }
    }

    public func drain() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { SystemCalls.read(fd, $0.baseAddress!, 8) }
    }
}
