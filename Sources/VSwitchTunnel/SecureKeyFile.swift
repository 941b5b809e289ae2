import Glibc

/// Loads the key file of a secure tunnel port (`--key-file FILE`).
///
/// Format: UTF-8 text, one key per line as base64 of 32 bytes (what `vswitchctl genkey` prints).
/// The first key is the current key, an optional second the previous one (see `SecureKeyRing` for
/// rotating with it). Blank lines, surrounding whitespace and lines starting with `#` are ignored.
///
/// The file must be a regular file that neither group nor others can read, write or execute
/// (mode & 0o077 == 0), checked on the open descriptor so there is no window between check and
/// read. It is read with plain `open`/`fstat`/`read` and parsed without Foundation or `String`,
/// and the read buffer is zeroed before it is freed.
public enum SecureKeyFile {
    /// Files larger than this are not key files (a key file is under 200 bytes).
    public static let maximumByteCount = 64 * 1024

    /// The key ring in the file at `path`, or an error whose description names the file and says
    /// what to do.
    public static func load(path: String) throws(SecureKeyFileError) -> SecureKeyRing {
        func fail(_ reason: SecureKeyFileError.Reason) -> SecureKeyFileError {
            SecureKeyFileError(path: path, reason: reason)
        }
        var descriptor: Int32
        repeat { descriptor = open(path, O_RDONLY | O_CLOEXEC) } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else {
            let error = errno
            throw fail(error == ENOENT ? .missing : .unreadable(errno: error))
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw fail(.unreadable(errno: errno)) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw fail(.notRegularFile) }
        let mode = UInt32(status.st_mode & 0o7777)
        guard mode & 0o077 == 0 else { throw fail(.accessibleByOthers(mode: mode)) }
        guard status.st_size <= maximumByteCount else { throw fail(.tooLarge) }

        var contents = [UInt8](repeating: 0, count: maximumByteCount + 1)
        defer { for index in contents.indices { contents[index] = 0 } }
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

    /// The key ring in key file text `contents`; `path` only names the file in errors.
    public static func parse(_ contents: some Collection<UInt8>, path: String) throws(SecureKeyFileError) -> SecureKeyRing {
        try parseLines(ArraySlice(contents), path: path)
    }

    private static func parseLines(_ contents: ArraySlice<UInt8>, path: String) throws(SecureKeyFileError) -> SecureKeyRing {
        var keys: [SecureKey] = []
        var lineNumber = 0
        for line in contents.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let text = trimmed(line)
            if text.isEmpty || text.first == UInt8(ascii: "#") { continue }
            guard keys.count < 2 else { throw SecureKeyFileError(path: path, reason: .tooManyKeys(line: lineNumber)) }
            guard let decoded = Base64.decode(text), let key = SecureKey(bytes: decoded) else {
                throw SecureKeyFileError(path: path, reason: .badKey(line: lineNumber))
            }
            keys.append(key)
        }
        guard let current = keys.first else { throw SecureKeyFileError(path: path, reason: .empty) }
        return SecureKeyRing(current: current, previous: keys.count > 1 ? keys[1] : nil)
    }
}

/// Why a key file was refused. `description` is one line naming the file and saying what to do.
public struct SecureKeyFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        /// No file at the path.
        case missing
        /// `open`, `fstat` or `read` failed with this errno (EACCES, EISDIR, EIO, ...).
        case unreadable(errno: Int32)
        /// A directory, device, FIFO or socket.
        case notRegularFile
        /// Group or others have some access (`mode` & 0o077 != 0); `mode` is the permission bits.
        case accessibleByOthers(mode: UInt32)
        /// Larger than `SecureKeyFile.maximumByteCount`.
        case tooLarge
        /// No key in it: empty, or only blank and comment lines.
        case empty
        /// The line (1-based) is neither blank, a comment, nor base64 of 32 bytes.
        case badKey(line: Int)
        /// A third key on this line (1-based).
        case tooManyKeys(line: Int)
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
            return "\(file) does not exist: create it with `vswitchctl genkey -w \(path)`"
        case .unreadable(let error):
            return "cannot read \(file): \(String(cString: strerror(error)))"
        case .notRegularFile:
            return "\(file) is not a regular file"
        case .accessibleByOthers(let mode):
            let access = mode & 0o044 != 0 ? "readable" : mode & 0o022 != 0 ? "writable" : "accessible"
            return "\(file) is \(access) by others (mode \(octal(mode))): chmod 600 \(path)"
        case .tooLarge:
            return "\(file) is larger than \(SecureKeyFile.maximumByteCount) bytes, so not a key file"
        case .empty:
            return "\(file) holds no key: make a new one with `vswitchctl genkey -w FILE`"
        case .badKey(let line):
            return "\(file) line \(line): not a key (expected base64 of 32 bytes, as `vswitchctl genkey` prints)"
        case .tooManyKeys(let line):
            return "\(file) line \(line): a third key (a key file holds the current key and at most one previous key)"
        }
    }

    /// `0644`: the permission bits as four octal digits.
    private func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
