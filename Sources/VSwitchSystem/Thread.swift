#if canImport(Glibc)
import Glibc
@_exported import CVSwitchLinux
#endif

/// A joinable POSIX thread running a closure. Swift 6 note (NOTES.md): closures created in
/// top-level main.swift code are main-actor isolated and trap on another thread, so threads are
/// only ever started from here, with a `@Sendable` body.
public final class PThread: @unchecked Sendable {
    private var handle: pthread_t = 0
    private final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }

    public init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        let box = Unmanaged.passRetained(Box(body))
        let rc = pthread_create(&handle, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw SystemError("pthread_create", errno: rc)
        }
        _ = vswitch_set_thread_name(handle, String(name.prefix(15)))
    }

    public func join() {
        _ = pthread_join(handle, nil)
    }

    /// Runs `work` on a fresh thread and joins it: for work that changes per-thread state (setns,
    /// unshare) and must not leak it into the caller's thread or its thread pool. Only a failed
    /// pthread_create throws.
    public static func runAndJoin(name: String, _ work: () -> Void) throws {
        try withoutActuallyEscaping(work) { escapable in
            final class Job { let work: () -> Void; init(_ w: @escaping () -> Void) { work = w } }
            let argument = Unmanaged.passRetained(Job(escapable)).toOpaque()
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().work()
                return nil
            }, argument)
            guard rc == 0 else {
                Unmanaged<Job>.fromOpaque(argument).release()
                throw SystemError("pthread_create", errno: rc)
            }
            _ = vswitch_set_thread_name(thread, String(name.prefix(15)))
            pthread_join(thread, nil)
        }
    }
}
