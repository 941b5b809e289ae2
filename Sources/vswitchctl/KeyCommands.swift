import ArgumentParser
import Foundation
import VSwitchTunnel

// The keys of secure tunnels, made and read without a daemon (like `wg genkey`, `wg pubkey` and
// `wg genpsk`). Each site has a key pair: `genkey` makes the private key, which stays at the site
// (`add-port --key-file FILE`); `pubkey` prints its public key, which the other sites name with
// `--peer-key`. `genpsk` makes the optional pre-shared key, the same file at both ends
// (`--psk-file FILE`). Keys are base64 of 32 bytes; files are created with mode 0600 and never
// overwritten, and `pubkey --key-file` checks a file as vswitchd does (SecureKeyFile).

/// `vswitchctl genkey [-w FILE]`: a new private key for a site; needs no daemon.
struct GenKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genkey",
        abstract: "Print a new per-site private key for --encap secure (base64), or write it to a file (mode 0600).",
        discussion: """
            Each site has its own key pair. The private key stays at the site (add-port --key-file FILE); its public key, \
            from vswitchctl pubkey, goes to the other sites (their --peer-key). Send vswitchd SIGHUP after replacing the file. \
            Example: vswitchctl genkey -w /etc/vswitch/site.key; vswitchctl pubkey --key-file /etc/vswitch/site.key
            """)
    @Option(name: .customShort("w"), help: ArgumentHelp("Write the key to FILE (created with mode 0600; an existing file is refused).", valueName: "FILE"))
    var file: String?

    func run() throws { try emitKey(SecurePrivateKey.generate().base64, to: file, command: "genkey") }
}

/// `vswitchctl genpsk [-w FILE]`: a new pre-shared key, the same file at both ends; needs no daemon.
struct GenPSK: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genpsk",
        abstract: "Print a new pre-shared key for --psk-file (base64), or write it to a file (mode 0600).",
        discussion: """
            Optional, on top of the key pairs: both ends of a tunnel give the same file as --psk-file, and every handshake \
            mixes it in, so traffic recorded now stays closed even to someone who later breaks Curve25519. Copy it to the \
            other site over a channel you trust. Example: vswitchctl genpsk -w /etc/vswitch/tun1.psk
            """)
    @Option(name: .customShort("w"), help: ArgumentHelp("Write the key to FILE (created with mode 0600; an existing file is refused).", valueName: "FILE"))
    var file: String?

    func run() throws { try emitKey(SecureKey.generate().base64, to: file, command: "genpsk") }
}

/// `vswitchctl pubkey [--key-file FILE]`: the public key of a private key; needs no daemon.
struct PubKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubkey",
        abstract: "Print the public key of a private key read from --key-file FILE or standard input.",
        discussion: """
            Give the public key to the other sites: they name this site with --peer-key KEY. It is not secret. A key file \
            is checked as vswitchd checks it (a regular file, not a symbolic link, owned by root, mode 0600, one key). \
            Examples: vswitchctl pubkey --key-file /etc/vswitch/site.key; vswitchctl genkey | tee site.key | vswitchctl pubkey
            """)
    @Option(name: .customLong("key-file"), help: ArgumentHelp("Read the private key from FILE (default: standard input).", valueName: "FILE"))
    var keyFile: String?

    func run() throws {
        let secret: SecureKey
        if let keyFile {
            do { secret = try SecureKeyFile.loadKey(path: keyFile) } catch { throw CommandFailure(error.description) }
        } else {
            secret = try readStandardInput()
        }
        let text = SecurePrivateKey(secret).publicKey.base64 + "\n"
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// The one key on standard input (key file text: comments and blank lines allowed).
    private func readStandardInput() throws -> SecureKey {
        var buffer = [UInt8](repeating: 0, count: SecureKeyFile.maximumByteCount + 1)
        defer { buffer.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, $0.count) } }
        var count = 0
        while count < buffer.count {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CommandFailure("cannot read standard input: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            count += n
        }
        guard count <= SecureKeyFile.maximumByteCount else {
            throw CommandFailure("standard input is larger than \(SecureKeyFile.maximumByteCount) bytes, so not a key")
        }
        do {
            return try SecureKeyFile.parseKey(buffer[..<count], path: "standard input")
        } catch {
            switch error.reason {
            case .empty:
                throw CommandFailure("no key on standard input: pipe a private key in (vswitchctl genkey | vswitchctl pubkey) or give --key-file FILE")
            case .badKey(let line):
                throw CommandFailure("standard input line \(line): not a key (expected base64 of 32 bytes, as `vswitchctl genkey` prints)")
            case .secondKey(let line):
                throw CommandFailure("standard input line \(line): a second key (pubkey reads one private key)")
            default:
                throw CommandFailure(error.description)
            }
        }
    }
}

/// Prints `key` and a newline, or writes them to a new file `file` (mode 0600, never an existing one).
private func emitKey(_ key: String, to file: String?, command: String) throws {
    let text = key + "\n"
    guard let file else {
        FileHandle.standardOutput.write(Data(text.utf8))
        return
    }
    let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
    guard fd >= 0 else {
        throw CommandFailure("cannot create \(file): \(String(cString: strerror(errno)))\(errno == EEXIST ? " (it exists; \(command) never overwrites a key)" : "")")
    }
    defer { close(fd) }
    fchmod(fd, 0o600)  // whatever the umask
    let ok = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, text.utf8.count) == text.utf8.count }
    guard ok, fsync(fd) == 0 else { throw CommandFailure("cannot write \(file): \(String(cString: strerror(errno)))") }
}

/// An error printed as `vswitchctl: MESSAGE` with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
