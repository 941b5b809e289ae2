import Glibc
import Testing
import VSwitchTunnel

@Suite struct SecureKeyFileTests {
    let key = SecureKey.generate()

    func load(_ path: String) -> Result<SecureKeyRing, SecureKeyFileError> {
        Result { () throws(SecureKeyFileError) in try SecureKeyFile.load(path: path) }
    }

    func error(_ path: String) -> SecureKeyFileError? {
        if case .failure(let error) = load(path) { return error }
        return nil
    }

    @Test func loadsAKeyWithCommentsAndWhitespace() {
        withTemporaryDirectory { directory in
            let path = directory + "/tunnel.key"
            writeFile(path, "# tunnel key for br0, made by vswitchctl genkey\n\n  \(key.base64)  \r\n\n")
            #expect((try? SecureKeyFile.load(path: path)) == SecureKeyRing(current: key))
            writeFile(path, key.base64, mode: 0o400)
            #expect((try? SecureKeyFile.load(path: path)) == SecureKeyRing(current: key))
        }
    }

    @Test func loadsCurrentAndPreviousKeys() {
        withTemporaryDirectory { directory in
            let path = directory + "/tunnel.key"
            let previous = SecureKey.generate()
            writeFile(path, "# new\n\(key.base64)\n# old, until every peer has the new one\n\(previous.base64)\n")
            #expect((try? SecureKeyFile.load(path: path)) == SecureKeyRing(current: key, previous: previous))
        }
    }

    @Test func refusesFilesOthersCanAccess() {
        withTemporaryDirectory { directory in
            let path = directory + "/tunnel.key"
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

    @Test func refusesMissingEmptyAndNonRegularFiles() {
        withTemporaryDirectory { directory in
            let path = directory + "/tunnel.key"
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
            let path = directory + "/tunnel.key"
            let short = String(SecureKey.generate().base64.prefix(40))  // 30 bytes
            let cases: [(String, SecureKeyFileError.Reason)] = [
                ("not base64 at all!\n", .badKey(line: 1)),
                ("# comment\n\(short)\n", .badKey(line: 2)),
                ("\(key.base64) trailing\n", .badKey(line: 1)),
                ("\(key.base64)\n\n\(key.base64)x\n", .badKey(line: 3)),
                ("\(key.base64)\n\(key.base64)\n\(key.base64)\n", .tooManyKeys(line: 3)),
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
        #expect(try SecureKeyFile.parse(Array("\(key.base64)\n".utf8), path: "inline") == SecureKeyRing(current: key))
        #expect(throws: SecureKeyFileError(path: "inline", reason: .empty)) { try SecureKeyFile.parse([UInt8](), path: "inline") }
    }
}
