import Glibc
import Testing
import VSwitchTunnel

@Suite struct SecureKeyFileTests {
    let key = SecureKey.generate()

    func load(_ path: String) -> Result<SecureKey, SecureKeyFileError> {
        Result { () throws(SecureKeyFileError) in try SecureKeyFile.loadKey(path: path) }
    }

    func error(_ path: String) -> SecureKeyFileError? {
        if case .failure(let error) = load(path) { return error }
        return nil
    }

    @Test func loadsAKeyWithCommentsAndWhitespace() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            writeFile(path, "# private key of site A, made by vswitchctl genkey\n\n  \(key.base64)  \r\n\n")
            #expect((try? SecureKeyFile.loadKey(path: path)) == key)
            writeFile(path, key.base64, mode: 0o400)
            #expect((try? SecureKeyFile.loadKey(path: path)) == key)
        }
    }

    @Test func refusesASecondKey() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            // A version 1 rotation file: the current key, then the previous one.
            writeFile(path, "# new\n\(key.base64)\n# old, until every peer has the new one\n\(SecureKey.generate().base64)\n")
            #expect(error(path)?.reason == .secondKey(line: 4))
            #expect(error(path)?.description == "key file \(path) line 4: a second key (a key file holds one key; "
                + "a version 1 file held the current key and the previous one: keep the first)")
            writeFile(path, "\(key.base64)\n\(key.base64)\n")
            #expect(error(path)?.reason == .secondKey(line: 2), "the same key twice is a second key too")
        }
    }

    @Test func refusesFilesOthersCanAccess() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            let cases: [(mode_t, String)] = [
                (0o644, "readable by others (mode 0644)"), (0o640, "readable by others (mode 0640)"),
                (0o604, "readable by others (mode 0604)"), (0o620, "writable by others (mode 0620)"),
                (0o602, "writable by others (mode 0602)"), (0o610, "accessible by others (mode 0610)"),
                (0o601, "accessible by others (mode 0601)"), (0o777, "readable by others (mode 0777)"),
            ]
            for (mode, words) in cases {
                writeFile(path, key.base64 + "\n", mode: mode)
                let failure = error(path)
                #expect(failure?.reason == .accessibleByOthers(mode: UInt32(mode)))
                #expect(failure?.description == "key file \(path) is \(words): chmod 600 \(path)")
            }
        }
    }

    @Test func refusesASymbolicLink() {
        withTemporaryDirectory { directory in
            let target = directory + "/site.key", link = directory + "/link.key"
            writeFile(target, key.base64 + "\n")
            #expect(symlink(target, link) == 0)
            #expect(error(link)?.reason == .symbolicLink)
            #expect(error(link)?.description == "key file \(link) is a symbolic link: point --key-file at the file itself")
            #expect((try? SecureKeyFile.loadKey(path: target)) == key, "the file itself loads")
            let dangling = directory + "/dangling.key"
            #expect(symlink(directory + "/nothing", dangling) == 0)
            #expect(error(dangling)?.reason == .symbolicLink)
        }
    }

    /// A FIFO must not hang the daemon waiting for a writer: opened non-blocking, then refused.
    @Test(.timeLimit(.minutes(1))) func refusesAFIFOWithoutHanging() {
        withTemporaryDirectory { directory in
            let path = directory + "/fifo.key"
            #expect(mkfifo(path, 0o600) == 0)
            #expect(error(path)?.reason == .notRegularFile)
            #expect(error(path)?.description == "key file \(path) is not a regular file")
        }
    }

    @Test func refusesAFileOwnedBySomeoneElse() throws {
        // Only root can give a file away; unprivileged runs check the rule's other half below.
        guard geteuid() == 0 else { return }
        try withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            writeFile(path, key.base64 + "\n")
            try #require(chown(path, 4321, 4321) == 0)
            #expect(error(path)?.reason == .wrongOwner(uid: 4321))
            #expect(error(path)?.description == "key file \(path) is owned by uid 4321, not root: chown root \(path)")
            try #require(chown(path, 0, 0) == 0)
            #expect((try? SecureKeyFile.loadKey(path: path)) == key)
        }
    }

    @Test func acceptsRootOrTheProcessOwner() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            writeFile(path, key.base64 + "\n")  // owned by our effective uid, root or not
            #expect((try? SecureKeyFile.loadKey(path: path)) == key)
        }
    }

    @Test func refusesMissingEmptyAndNonRegularFiles() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            #expect(error(path)?.reason == .missing)
            #expect(error(path)?.description.hasPrefix("key file \(path) does not exist") == true)

            writeFile(path, "")
            #expect(error(path)?.reason == .empty)
            #expect(error(path)?.description.hasPrefix("key file \(path) holds no key") == true)
            writeFile(path, "# nothing yet\n\n   \n")
            #expect(error(path)?.reason == .empty)

            let subdirectory = directory + "/dir"
            mkdir(subdirectory, 0o700)
            #expect(error(subdirectory)?.reason == .notRegularFile)
            #expect(error(subdirectory)?.description == "key file \(subdirectory) is not a regular file")

            writeFile(path, [UInt8](repeating: UInt8(ascii: "#"), count: 64 * 1024 + 1))
            #expect(error(path)?.reason == .tooLarge)
        }
    }

    @Test func refusesBadContentNamingTheLine() {
        withTemporaryDirectory { directory in
            let path = directory + "/site.key"
            let short = String(SecureKey.generate().base64.prefix(40))  // 30 bytes
            let cases: [(String, SecureKeyFileError.Reason)] = [
                ("not base64 at all!\n", .badKey(line: 1)),
                ("# comment\n\(short)\n", .badKey(line: 2)),
                ("\(key.base64) trailing\n", .badKey(line: 1)),
                ("\(key.base64)x\n", .badKey(line: 1)),
                ("\(key.base64)\n\n\(key.base64)x\n", .secondKey(line: 3)),
            ]
            for (contents, reason) in cases {
                writeFile(path, contents)
                #expect(error(path)?.reason == reason, "\(contents)")
            }
            writeFile(path, "junk\n")
            #expect(error(path)?.description
                == "key file \(path) line 1: not a key (expected base64 of 32 bytes, as `vswitchctl genkey` prints)")
        }
    }

    @Test func parsesWithoutAFile() throws {
        #expect(try SecureKeyFile.parseKey(Array("\(key.base64)\n".utf8), path: "inline") == key)
        #expect(throws: SecureKeyFileError(path: "inline", reason: .empty)) { try SecureKeyFile.parseKey([UInt8](), path: "inline") }
    }
}
