#if canImport(Glibc)
import Glibc
#endif
import VSwitchNetlink
import VSwitchSystem

/// Runs programs inside a lab node: the spawning thread enters the node's namespace first
/// (NetworkNamespace.run), and a child inherits the namespace of the thread that spawns it, so no
/// `ip netns exec` is needed.
public enum LabProcess {
    /// Runs `argv` in namespace `namespace` (nil: the caller's) and waits; returns the exit status
    /// (128+signal if killed). With `quiet`, stdout and stderr go to /dev/null.
    public static func run(_ argv: [String], inNamespace namespace: String?, quiet: Bool = false) throws -> Int32 {
        let pid = try spawn(argv, inNamespace: namespace, quiet: quiet, newSession: false)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    /// Starts `argv` and returns its pid without waiting. `newSession` detaches it from the
    /// terminal (a daemon). `output` redirects stdout and stderr to that file (appending).
    public static func spawn(_ argv: [String], inNamespace namespace: String?, quiet: Bool = false,
                             newSession: Bool, output: String? = nil) throws -> pid_t {
        precondition(!argv.isEmpty)
        return try NetworkNamespace.run(in: namespace) {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            vswitch_spawn_close_inherited(&actions)
            if let output {
                posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
                posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            } else if quiet {
                posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
                posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
            }
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            if newSession { posix_spawnattr_setflags(&attributes, Int16(0x80) /* POSIX_SPAWN_SETSID (a GNU extension Glibc does not import) */) }
            let cArgs = argv.map { strdup($0) } + [nil]
            defer { cArgs.forEach { free($0) } }
            var pid: pid_t = 0
            let rc = posix_spawnp(&pid, argv[0], &actions, &attributes, cArgs, environ)
            guard rc == 0 else { throw LabError("cannot run \(argv[0]): \(String(cString: strerror(rc)))") }
            return pid
        }
    }
}

/// A lab operation that failed; the message says what and why.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
