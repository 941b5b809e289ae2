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
        let child = try start(argv, inNamespace: namespace, quiet: quiet, newSession: false)
        child.waitUntilExit()
        return child.wasSignalled ? 128 + child.terminationStatus : child.terminationStatus
    }

    /// Starts `argv` and returns its pid without waiting. `newSession` detaches it from the
    /// terminal (a daemon). `output` redirects stdout and stderr to that file (appending).
    public static func spawn(_ argv: [String], inNamespace namespace: String?, quiet: Bool = false,
                             newSession: Bool, output: String? = nil) throws -> pid_t {
        try start(argv, inNamespace: namespace, quiet: quiet, newSession: newSession, output: output).processIdentifier
    }

    private static func start(_ argv: [String], inNamespace namespace: String?, quiet: Bool, newSession: Bool,
                              output: String? = nil) throws -> ChildProcess {
        precondition(!argv.isEmpty)
        let out: ChildProcess.Stdio = output.map { .appending($0) } ?? (quiet ? .null : .inherit)
        return try NetworkNamespace.run(in: namespace) {
            do {
                return try ChildProcess(path: argv[0], arguments: Array(argv.dropFirst()), searchPath: true, newSession: newSession,
                                        standardInput: output == nil ? .inherit : .null, standardOutput: out,
                                        standardError: output == nil ? out : .descriptor(1))
            } catch let error as SystemError {
                throw LabError("cannot run \(argv[0]): \(error.reason)")
            }
        }
    }
}

/// A lab operation that failed; the message says what and why.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
