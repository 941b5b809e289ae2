#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import Synchronization

/// A child process started with posix_spawn: the part of Foundation's `Process` the tests and
/// `vswitchctl lab` need (start, pid, running, exit status, wait), without Foundation.
///
/// Why not `Process`: on Linux its `run()` reads /proc/self/fd with a 256-byte copy of each
/// directory entry, which reads past glibc's buffer when an entry sits at its end before an
/// unmapped page, and crashes the whole process now and then (swift-corelibs-foundation PR 5472,
/// fixed after the toolchain used here). A test process that starts hundreds of children while
/// holding sockets and pipes of its own hit it.
///
/// The child keeps only the three standard descriptors (`posix_spawn_file_actions_addclosefrom_np`
/// from 3): it never holds a pipe or socket of the parent's, so a pipe's reader sees the end when
/// its own child exits. Safe to query from several threads.
public final class ChildProcess: Sendable {
    /// Where one of the child's standard descriptors comes from.
    public enum Stdio: Sendable {
        /// The parent's own (a command run from a terminal).
        case inherit
        /// /dev/null.
        case null
        /// A descriptor of the parent's, duplicated (descriptor 1 for stderr: where stdout went).
        case descriptor(Int32)
        /// A file, created if missing (mode 0644), appended to.
        case appending(String)
    }

    /// The child's pid.
    public let processIdentifier: pid_t
    private let status = Mutex<Int32?>(nil)

    /// Starts `path` with `arguments` (not counting argv[0]) and the caller's environment or
    /// `environment`. `searchPath`: a bare name is looked up in PATH (posix_spawnp).
    /// `newSession`: the child leaves the terminal's session (a daemon). The child starts in the
    /// calling thread's network namespace.
    public init(path: String, arguments: [String], environment: [String: String]? = nil, searchPath: Bool = false,
                newSession: Bool = false, standardInput: Stdio = .null, standardOutput: Stdio = .inherit,
                standardError: Stdio = .inherit) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in [(Int32(0), standardInput), (1, standardOutput), (2, standardError)] {
            switch source {
            case .inherit: break
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .descriptor(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            case .appending(let file): posix_spawn_file_actions_addopen(&actions, target, file, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
        }
        vswitch_spawn_close_inherited(&actions)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        // No signal blocked, every handler the default: the spawning thread may block signals (test
        // threads do), and a child would inherit that, so a SIGTERM to it would stay pending.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        // POSIX_SPAWN_SETSID (0x80) is a GNU extension Glibc's module does not import.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (newSession ? 0x80 : 0)))
        var pid: pid_t = 0
        let spawn = searchPath ? posix_spawnp : posix_spawn
        let rc = envp.map { spawn(&pid, path, &actions, &attributes, argv, $0) } ?? spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw SystemError("posix_spawn \(path)", errno: rc) }
        processIdentifier = pid
    }

    /// Reaps the child if it has exited (without blocking); true while it runs.
    public var isRunning: Bool {
        status.withLock { status in
            if status != nil { return false }
            var raw: Int32 = 0
            let r = waitpid(processIdentifier, &raw, WNOHANG)
            if r == processIdentifier {
                status = raw
                return false
            }
            if r < 0 && errno != EINTR {  // ECHILD: reaped elsewhere; nothing more to learn
                status = 0
                return false
            }
            return true
        }
    }

    /// Waits for the child to exit (polling every millisecond, so other threads can ask meanwhile).
    public func waitUntilExit() {
        while isRunning { usleep(1_000) }
    }

    /// The exit status, or the signal that ended it (as Foundation's `terminationStatus` does);
    /// valid once `isRunning` is false.
    public var terminationStatus: Int32 {
        let raw = status.withLock { $0 } ?? 0
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// True if a signal ended the child.
    public var wasSignalled: Bool {
        let raw = status.withLock { $0 } ?? 0
        return raw & 0x7f != 0
    }
}
