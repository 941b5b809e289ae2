import Glibc

/// Loads a key file of a secure tunnel port: the site's private key (`--key-file FILE`) or the
/// pre-shared key (`--psk-file FILE`). `vswitchctl pubkey --key-file` reads one the same way.
///
/// Format: UTF-8 text holding exactly one key, base64 of 32 bytes (what `vswitchctl genkey` and
/// `vswitchctl genpsk` print). Blank lines, surrounding whitespace and lines starting with `#` are
/// ignored. A second key is refused: version 1 key files held a current and a previous key for
/// rotation; version 2 has no use for that (a key changes with SIGHUP and a new handshake).
///
/// The file is refused unless it is what it claims to be, all checked on the open descriptor so
/// there is no window between check and read:
///   - opened with `O_NOFOLLOW` (a symbolic link is refused: whoever can change the link would
///     choose the key) and `O_NONBLOCK` (a FIFO must not hang the daemon; `fstat` then says it is
///     not a regular file);
///   - a regular file;
///   - owned by root, or by the effective uid of the process when that is not root (so an
///     unprivileged vswitchctl or test can use its own files);
///   - neither group nor others can read, write or execute it (mode & 0o077 == 0);
///   - at most `maximumByteCount` bytes.
/// It is read with plain `open`/`fstat`/`read` and parsed without Foundation or `String`, and the
/// read buffer is zeroed before it is freed.
public enum SecureKeyFile {
    /// Files larger than this are not key files (a key file is under 200 bytes).
    public static let maximumByteCount = 64 * 1024

    /// The key in the file at `path`, or an error whose description names the file and says
    /// what to do.
    public static func loadKey(path: String) throws(SecureKeyFileError) -> SecureKey {
        func fail(_ reason: SecureKeyFileError.Reason) -> SecureKeyFileError {
            SecureKeyFileError(path: path, reason: reason)
        }
        var descriptor: Int32
        repeat {
            descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else {
            let error = errno
            if error == ENOENT { throw fail(.missing) }
            // O_NOFOLLOW on a symbolic link fails with ELOOP (as does a loop of links earlier in
            // the path, which lstat tells apart).
            var link = stat()
            if error == ELOOP, lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK { throw fail(.symbolicLink) }
            throw fail(.unreadable(errno: error))
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw fail(.unreadable(errno: errno)) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw fail(.notRegularFile) }
        let owner = UInt32(status.st_uid)
        guard owner == 0 || owner == UInt32(geteuid()) else { throw fail(.wrongOwner(uid: owner)) }
        let mode = UInt32(status.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw fail(.accessibleByOthers(mode: mode)) }
        guard status.st_size <= maximumByteCount else { throw fail(.tooLarge) }

        var contents = [UInt8](repeating: 0, count: maximumByteCount + 1)
        defer { zero(&contents) }
        var count = 0
        while count < contents.count {
            let n = contents.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress! + count, buffer.count - count)
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw fail(.unreadable(errno: errno)) }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumByteCount else { throw fail(.tooLarge) }
        return try parseLines(contents[..<count], path: path)
    }

    /// The key in key file text `contents`; `path` only names the file in errors.
    public static func parseKey(_ contents: some Collection<UInt8>, path: String) throws(SecureKeyFileError) -> SecureKey {
        var copy = Array(contents)
        defer { zero(&copy) }
        return try parseLines(copy[...], path: path)
    }

    private static func parseLines(_ contents: ArraySlice<UInt8>, path: String) throws(SecureKeyFileError) -> SecureKey {
        var key: SecureKey?
        var lineNumber = 0
        for line in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let text = trimmed(line)
            if text.isEmpty || text.first == UInt8(ascii: "#") { continue }
            guard key == nil else { throw SecureKeyFileError(path: path, reason: .secondKey(line: lineNumber)) }
            guard var decoded = Base64.decode(text) else { throw SecureKeyFileError(path: path, reason: .badKey(line: lineNumber)) }
            defer { zero(&decoded) }
            guard let parsed = SecureKey(bytes: decoded) else { throw SecureKeyFileError(path: path, reason: .badKey(line: lineNumber)) }
            key = parsed
        }
        guard let key else { throw SecureKeyFileError(path: path, reason: .empty) }
        return key
    }

    /// Overwrites `bytes` with zeros (through a volatile-enough path: `memset` on the storage).
    private static func zero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { memset(base, 0, buffer.count) }
        }
    }
}

/// Why a key file was refused. `description` is one line naming the file and saying what to do.
public struct SecureKeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// No file at the path.
        case missing
        /// `open`, `fstat` or `read` failed with this errno (EACCES, EISDIR, EIO, ...).
        case unreadable(errno: Int32)
        /// The path names a symbolic link (refused by `O_NOFOLLOW`).
        case symbolicLink
        /// A directory, device, FIFO or socket.
        case notRegularFile
        /// Owned by this uid: neither root nor the process's own effective uid.
        case wrongOwner(uid: UInt32)
        /// Group or others have some access (`mode` & 0o077 != 0); `mode` is the permission bits.
        case accessibleByOthers(mode: UInt32)
        /// Larger than `SecureKeyFile.maximumByteCount`.
        case tooLarge
        /// No key in it: empty, or only blank and comment lines.
        case empty
        /// The line (1-based) is neither blank, a comment, nor base64 of 32 bytes.
        case badKey(line: Int)
        /// A second key on this line (1-based): a key file holds one.
        case secondKey(line: Int)
    }

    /// The file as the user named it.
    public let path: String
    public let reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        let file = "key file \(path)"
        switch reason {
        case .missing:
            return "\(file) does not exist: create it with `vswitchctl genkey -w \(path)` (`genpsk` for a pre-shared key)"
        case .unreadable(let error):
            return "cannot read \(file): \(String(cString: strerror(error)))"
        case .symbolicLink:
            return "\(file) is a symbolic link: point --key-file at the file itself"
        case .notRegularFile:
            return "\(file) is not a regular file"
        case .wrongOwner(let uid):
            let me = geteuid()
            return "\(file) is owned by uid \(uid), not root\(me == 0 ? "" : " (nor uid \(me), this process)"): chown root \(path)"
        case .accessibleByOthers(let mode):
            let access = mode & 0o044 != 0 ? "readable" : mode & 0o022 != 0 ? "writable" : "accessible"
            return "\(file) is \(access) by others (mode \(octal(mode))): chmod 600 \(path)"
        case .tooLarge:
            return "\(file) is larger than \(SecureKeyFile.maximumByteCount) bytes, so not a key file"
        case .empty:
            return "\(file) holds no key: make a new one with `vswitchctl genkey -w FILE` (`genpsk` for a pre-shared key)"
        case .badKey(let line):
            return "\(file) line \(line): not a key (expected base64 of 32 bytes, as `vswitchctl genkey` prints)"
        case .secondKey(let line):
            return "\(file) line \(line): a second key (a key file holds one key; a version 1 file held the current key and the previous one: keep the first)"
        }
    }

    /// `0644`: the permission bits as four octal digits.
    private func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
