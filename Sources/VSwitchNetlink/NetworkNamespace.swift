import Glibc
import VSwitchSystem
import Synchronization

/// Named network namespaces, the way iproute2 keeps them: a namespace is held alive by a bind mount of its
/// nsfs inode on `/run/netns/NAME`, so `ip netns` and this module see the same set.
///
/// A network namespace belongs to a thread, not to a process: `setns` and `unshare` change only the
/// calling thread. Everything here that changes namespace does it on a fresh pthread that exits afterwards,
/// so the caller's thread (and any thread pool it belongs to) never ends up in another namespace.
public enum NetworkNamespace {
    /// Where iproute2 keeps its namespace mounts.
    public static let runDirectory = "/run/netns"

    /// The file that holds namespace `name`.
    public static func path(of name: String) -> String { "\(runDirectory)/\(name)" }

    /// Creates namespace `name` like `ip netns add`: a shared /run/netns, a mount-point file, and a new
    /// namespace (unshared on a dedicated thread) bind-mounted onto it. Its loopback is left down.
    public static func create(_ name: String) throws {
        let operation = "create namespace"
        try validate(name, operation: operation)
        try prepareRunDirectory(operation: operation, name: name)

        let path = path(of: name)
        let fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        if fd < 0 { throw NetlinkError(operation: operation, object: name, code: errno) }
        close(fd)

        var failure: NetlinkError?
        do {
            try onDedicatedThread {
                if Syscalls.unshare() != 0 {
                    failure = NetlinkError(operation: operation, object: name, code: errno)
                    return
                }
                // The new namespace lives as long as this thread; the bind mount keeps it after.
                if mount("/proc/thread-self/ns/net", path, "none", UInt(MS_BIND), nil) != 0 {
                    failure = NetlinkError(operation: operation, object: name, code: errno)
                }
            }
        } catch let error as NetlinkError {
            failure = error
        }
        if let failure {
            unlink(path)
            throw failure
        }
    }

    /// Deletes namespace `name` like `ip netns delete`: detaches the mount and removes the file. Links
    /// still inside go away with the namespace once nothing else (a process, an open fd) holds it.
    public static func delete(_ name: String) throws {
        let operation = "delete namespace"
        try validate(name, operation: operation)
        let path = path(of: name)
        // EINVAL: not a mount point (a half-created namespace); unlink it anyway.
        if umount2(path, Int32(MNT_DETACH)) != 0, errno != EINVAL, errno != ENOENT {
            throw NetlinkError(operation: operation, object: name, code: errno)
        }
        if unlink(path) != 0 {
            let code = errno
            throw NetlinkError(operation: operation, object: name, code: code,
                               reason: code == ENOENT ? "No such namespace" : nil)
        }
    }

    /// Whether /run/netns/NAME exists.
    public static func exists(_ name: String) -> Bool {
        guard (try? validate(name, operation: "")) != nil else { return false }
        return access(path(of: name), F_OK) == 0
    }

    /// Names in /run/netns, sorted; empty when the directory does not exist.
    public static func list() -> [String] {
        guard let dir = opendir(runDirectory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Runs `body` inside namespace `name` on a fresh, joined pthread, and returns its result.
    /// With `name == nil`, runs `body` directly on the calling thread (the caller's namespace).
    ///
    /// Netlink and other sockets opened inside `body` stay in that namespace after it returns.
    /// Throws `NetlinkError` ("cannot enter namespace NAME: No such namespace") or what `body` throws.
    public static func run<T>(in name: String?, _ body: () throws -> T) throws -> T {
        guard let name else { return try body() }
        let operation = "enter namespace"
        let fd = try openHandle(name, operation: operation, object: name)
        defer { close(fd) }
        var result: Result<T, any Error>?
        try onDedicatedThread {
            if Syscalls.setns(fd) != 0 {
                result = .failure(NetlinkError(operation: operation, object: name, code: errno))
                return
            }
            result = Result { try body() }
        }
        return try result!.get()
    }

    // MARK: - Internals

    /// An O_CLOEXEC fd on /run/netns/NAME, for setns or IFLA_NET_NS_FD. The caller closes it.
    static func openHandle(_ name: String, operation: String, object: String,
                           namespace: String? = nil) throws -> Int32 {
        try validate(name, operation: operation)
        let fd = open(path(of: name), O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            throw NetlinkError(operation: operation, object: object, namespace: namespace, code: code,
                               reason: code == ENOENT ? "No such namespace" : nil)
        }
        return fd
    }

    static func validate(_ name: String, operation: String) throws {
        if name.isEmpty || name == "." || name == ".." || name.contains("/") || name.utf8.count > 255 {
            throw NetlinkError(operation: operation, object: "\"\(name)\"", code: EINVAL,
                               reason: "invalid namespace name")
        }
    }

    /// mkdir /run/netns and make it a shared mount, bind-mounting it onto itself first when it is not a
    /// mount point yet: as iproute2 does, so that namespace mounts propagate to other mount namespaces.
    private static func prepareRunDirectory(operation: String, name: String) throws {
        // Two threads creating their first namespaces at once would both bind-mount /run/netns.
        try runDirectoryLock.withLock { _ in try prepareRunDirectoryLocked(operation: operation, name: name) }
    }

    private static let runDirectoryLock = Mutex(())

    private static func prepareRunDirectoryLocked(operation: String, name: String) throws {
        if mkdir(runDirectory, 0o755) != 0, errno != EEXIST {
            throw NetlinkError(operation: operation, object: name, code: errno)
        }
        var boundOntoItself = false
        while mount("", runDirectory, "none", UInt(MS_SHARED | MS_REC), nil) != 0 {
            let code = errno
            if code != EINVAL || boundOntoItself {
                throw NetlinkError(operation: operation, object: name, code: code)
            }
            if mount(runDirectory, runDirectory, "none", UInt(MS_BIND | MS_REC), nil) != 0 {
                throw NetlinkError(operation: operation, object: name, code: errno)
            }
            boundOntoItself = true
        }
    }
}

// MARK: - Dedicated threads

/// Runs `work` on a new pthread and joins it; a failed pthread_create is a NetlinkError.
func onDedicatedThread(_ work: () -> Void) throws {
    do { try PThread.runAndJoin(name: "netns", work) } catch let e as SystemError {
        throw NetlinkError(operation: "start namespace thread", object: "", code: e.errno)
    }
}

/// setns/unshare for network namespaces, through CVSwitchLinux (Swift's Glibc module does not
/// import these GNU extensions). Both set errno and return -1 on failure, like the syscalls.
enum Syscalls {
    static func setns(_ fd: Int32) -> Int32 {
        let rc = vswitch_setns_net(fd)
        if rc < 0 { errno = -rc; return -1 }
        return 0
    }

    static func unshare() -> Int32 {
        let rc = vswitch_unshare_net()
        if rc < 0 { errno = -rc; return -1 }
        return 0
    }
}
