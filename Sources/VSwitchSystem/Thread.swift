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

    /// Runs `body` on a fresh thread and waits for it: for work that changes per-thread state
    /// (setns) and must not leak it into the caller's thread.
    public static func runAndWait<T>(name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let result = ResultBox<T>()
        let thread = try PThread(name: name) { result.value = Swift.Result { try body() } }
        thread.join()
        return try result.value!.get()
    }
}

private final class ResultBox<T>: @unchecked Sendable { var value: Result<T, Error>? }
