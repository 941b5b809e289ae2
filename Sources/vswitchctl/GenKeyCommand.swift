import ArgumentParser
import Foundation
import VSwitchTunnel

/// `vswitchctl genkey [-w FILE]`: a new random key for `--encap secure`; needs no daemon.
struct GenKey: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "genkey", abstract: "Print a new random key for --encap secure (base64), or write it to a file (mode 0600).",
        discussion: """
            Both ends of a secure tunnel need the same key file. To roll keys over without a gap, put the new key \\
            on the first line and the old one on the second at every end, send vswitchd SIGHUP, and later remove the old line. \\
            Example: vswitchctl genkey -w /etc/vswitch/site.key
            """)
    @Option(name: .customShort("w"), help: ArgumentHelp("Write the key to FILE (created with mode 0600; an existing file is refused).", valueName: "FILE"))
    var file: String?

    func run() throws {
        let text = SecureKey.generate().base64 + "\n"
        guard let file else {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CommandFailure("cannot create \(file): \(String(cString: strerror(errno)))\(errno == EEXIST ? " (it exists; genkey never overwrites a key)" : "")")
        }
        defer { close(fd) }
        fchmod(fd, 0o600)  // whatever the umask
        let ok = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, text.utf8.count) == text.utf8.count }
        guard ok, fsync(fd) == 0 else { throw CommandFailure("cannot write \(file): \(String(cString: strerror(errno)))") }
    }
}

/// An error printed as `vswitchctl: MESSAGE` with exit status 1.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
