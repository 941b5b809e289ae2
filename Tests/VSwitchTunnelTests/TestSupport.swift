// Shared helpers for the tunnel tests (hex fixtures come from VSwitchTesting): a seeded generator, frame builders, and
// temporary key files.
import VSwitchTesting
import Glibc
@testable import VSwitchTunnel

/// The project's seeded generator (VSwitchTesting), for reproducible fuzz loops.
typealias SeededGenerator = SplitMix64

extension Array where Element == UInt8 {
    static func random(count: Int, using generator: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
func be32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) } }

let hostA: [UInt8] = [0x02, 0, 0, 0, 0, 0x0a]
let hostB: [UInt8] = [0x02, 0, 0, 0, 0, 0x0b]

/// Ethernet + IPv4 + UDP (or `protocol`) from `source`:`sourcePort` to `destination`:`destinationPort`
/// in 198.18.0.0/15, with `payload` bytes of `fill`. `fragment` sets the IPv4 flags/offset field.
func ipv4Frame(source: UInt32 = 0xc612_0001, destination: UInt32 = 0xc612_0002, protocol: UInt8 = 17,
               sourcePort: UInt16, destinationPort: UInt16, payload: Int = 18, fill: UInt8 = 0x61,
               fragment: UInt16 = 0x4000) -> [UInt8] {
    let transport = be16(sourcePort) + be16(destinationPort) + be16(UInt16(8 + payload)) + [0, 0]
        + [UInt8](repeating: fill, count: payload)
    let ip: [UInt8] = [0x45, 0] + be16(UInt16(20 + transport.count)) + [0x12, 0x34] + be16(fragment)
        + [64, `protocol`, 0, 0] + be32(source) + be32(destination)
    return hostB + hostA + [0x08, 0x00] + ip + transport
}

/// Ethernet + IPv6 + UDP between 2001:2::1 and 2001:2::2 (RFC 5180's benchmarking range).
func ipv6Frame(sourcePort: UInt16, destinationPort: UInt16, payload: Int = 10) -> [UInt8] {
    let transport = be16(sourcePort) + be16(destinationPort) + be16(UInt16(8 + payload)) + [0, 0]
        + [UInt8](repeating: 0x62, count: payload)
    let source: [UInt8] = [0x20, 0x01, 0, 2] + [UInt8](repeating: 0, count: 11) + [1]
    let destination: [UInt8] = [0x20, 0x01, 0, 2] + [UInt8](repeating: 0, count: 11) + [2]
    let ip: [UInt8] = [0x60, 0, 0, 0] + be16(UInt16(transport.count)) + [17, 64] + source + destination
    return hostB + hostA + [0x86, 0xdd] + ip + transport
}

/// A 1,400-byte frame (Ethernet + IPv4 + UDP), the size tunnels mostly carry.
let frame1400 = ipv4Frame(sourcePort: 5000, destinationPort: 6000, payload: 1400 - 14 - 20 - 8)

/// A fresh directory under /tmp, removed with everything in it after `body`.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) rethrows -> R {
    var template = Array("/tmp/vswitch-tunnel-test-XXXXXX".utf8CString)
    let directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    defer {
        if let stream = opendir(directory) {
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." {
                    let path = directory + "/" + name
                    if unlink(path) != 0 { rmdir(path) }
                }
            }
            closedir(stream)
        }
        rmdir(directory)
    }
    return try body(directory)
}

/// Writes `contents` to `path` and sets its mode to `mode`.
func writeFile(_ path: String, _ contents: [UInt8], mode: mode_t = 0o600) {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(descriptor >= 0, "cannot create \(path)")
    let written = contents.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    precondition(written == contents.count)
    close(descriptor)
    precondition(chmod(path, mode) == 0)
}

func writeFile(_ path: String, _ text: String, mode: mode_t = 0o600) {
    writeFile(path, Array(text.utf8), mode: mode)
}
