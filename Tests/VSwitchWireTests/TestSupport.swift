// Shared helpers for the wire tests (hex fixtures come from VSwitchTesting): buffers at chosen alignments, and a
// seeded random generator so fuzz runs are reproducible.
import VSwitchTesting

/// Calls `body` with `data` copied to `misalignment` bytes past an 8-byte-aligned address, so the
/// views are exercised on buffers that are not naturally aligned.
func withBytes<R>(_ data: [UInt8], misalignment: Int = 0, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count + misalignment, alignment: 8)
    defer { storage.deallocate() }
    let buffer = UnsafeMutableRawBufferPointer(rebasing: storage[misalignment...])
    buffer.copyBytes(from: data)
    return try body(UnsafeRawBufferPointer(buffer))
}

/// Runs `emit` into a buffer of `count` bytes prefilled with 0xEE and returns what it wrote (the
/// whole buffer) and its result.
func emitted(count: Int, _ emit: (UnsafeMutableRawBufferPointer) -> Int?) -> (bytes: [UInt8], result: Int?) {
    var buffer = [UInt8](repeating: 0xee, count: count)
    let result = buffer.withUnsafeMutableBytes { emit($0) }
    return (buffer, result)
}

/// The project's seeded generator (VSwitchTesting), for reproducible fuzz loops.
typealias SeededGenerator = SplitMix64

extension Array where Element == UInt8 {
    static func random(count: Int, using generator: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

// MARK: - Fixtures, written out by hand the way a capture would show them

enum Fixture {
    /// Broadcast ARP request from 52:54:00:12:34:56 (192.168.1.10): who has 192.168.1.1?
    /// 42 bytes of frame plus 18 bytes of zero padding to the 60-byte Ethernet minimum.
    static let arpRequestFrame = bytes("""
        ff ff ff ff ff ff 52 54 00 12 34 56 08 06
        00 01 08 00 06 04 00 01 52 54 00 12 34 56 c0 a8 01 0a
        00 00 00 00 00 00 c0 a8 01 01
        00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
        """)

    /// The ARP reply to it, 28 bytes without Ethernet header.
    static let arpReply = bytes("""
        00 01 08 00 06 04 00 02 02 00 5e 00 00 01 c0 a8 01 01
        52 54 00 12 34 56 c0 a8 01 0a
        """)

    /// IPv4 ICMP echo request 10.0.0.1 -> 10.0.0.2, id 0x1c46, DF, TTL 64, header checksum 0x0a91;
    /// ICMP echo id 0x1234 seq 1 with 8 data bytes "abcdefgh", ICMP checksum 0x5435.
    static let ipv4ICMPEcho = bytes("""
        45 00 00 24 1c 46 40 00 40 01 0a 91 0a 00 00 01 0a 00 00 02
        08 00 54 35 12 34 00 01 61 62 63 64 65 66 67 68
        """)

    /// The well-known worked example header (UDP, 192.168.0.1 -> 192.168.0.199), checksum 0xb861.
    static let ipv4UDPHeader = bytes("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7")

    /// IPv6 ICMPv6 echo request 2001:db8::1 -> 2001:db8::2, flow label 0x12345, traffic class 0,
    /// hop limit 64, 8-byte payload.
    static let ipv6ICMPv6Echo = bytes("""
        60 01 23 45 00 08 3a 40
        20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01
        20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02
        80 00 00 00 00 07 00 01
        """)

    /// 802.1Q-tagged frame, VLAN 100, PCP 3, DEI 0, carrying the IPv4 ICMP echo above.
    static let vlanTaggedIPv4Frame = bytes("""
        02 00 00 00 00 02 02 00 00 00 00 01 81 00 60 64 08 00
        """) + ipv4ICMPEcho

    /// Q-in-Q: S-tag VLAN 10 (0x88a8) around C-tag VLAN 200 (0x8100) around IPv6.
    static let qinqIPv6Frame = bytes("""
        33 33 00 00 00 01 02 00 00 00 00 01 88 a8 00 0a 81 00 00 c8 86 dd
        """) + ipv6ICMPv6Echo
}
