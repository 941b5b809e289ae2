import Testing
import VSwitchTunnel

@Suite struct FlowHashTests {
    func port(_ frame: [UInt8]) -> UInt16 { frame.withUnsafeBytes { VXLANSourcePort.forFrame($0) } }
    func hash(_ frame: [UInt8]) -> UInt32 { frame.withUnsafeBytes { FlowHash.compute(frame: $0) } }

    @Test func rangeIsTheKernelDefaultEphemeralRange() {
        #expect(VXLANSourcePort.range == 32768...60999)
        #expect(VXLANSourcePort.forHash(0) == 32768)
        #expect(VXLANSourcePort.forHash(.max) == 60999)
        #expect(VXLANSourcePort.forHash(1 << 31) == 32768 + 28232 / 2)
    }

    @Test func sameFlowSamePortWhateverThePayload() {
        let first = port(ipv4Frame(sourcePort: 40000, destinationPort: 443, payload: 10, fill: 1))
        let second = port(ipv4Frame(sourcePort: 40000, destinationPort: 443, payload: 900, fill: 2))
        #expect(first == second)
        #expect(port(ipv6Frame(sourcePort: 1, destinationPort: 2, payload: 3))
            == port(ipv6Frame(sourcePort: 1, destinationPort: 2, payload: 300)))
    }

    @Test func flowsSpreadOverTheRange() {
        var ports = Set<UInt16>()
        for sourcePort in UInt16(10000)..<11000 {
            let p = port(ipv4Frame(sourcePort: sourcePort, destinationPort: 80))
            #expect(VXLANSourcePort.range.contains(p))
            ports.insert(p)
        }
        // 1,000 flows over 28,232 ports: about 18 collisions expected.
        #expect(ports.count > 950)
        #expect(ports.min()! < 32768 + 2000 && ports.max()! > 60999 - 2000)
        var v6 = Set<UInt16>()
        for sourcePort in UInt16(10000)..<10100 { v6.insert(port(ipv6Frame(sourcePort: sourcePort, destinationPort: 80))) }
        #expect(v6.count > 90)
    }

    @Test func everyFieldOfTheFlowCounts() {
        let base = ipv4Frame(sourcePort: 1000, destinationPort: 2000)
        #expect(hash(base) != hash(ipv4Frame(sourcePort: 1001, destinationPort: 2000)))
        #expect(hash(base) != hash(ipv4Frame(sourcePort: 1000, destinationPort: 2001)))
        #expect(hash(base) != hash(ipv4Frame(source: 0xc612_0003, sourcePort: 1000, destinationPort: 2000)))
        #expect(hash(base) != hash(ipv4Frame(destination: 0xc612_0003, sourcePort: 1000, destinationPort: 2000)))
        #expect(hash(base) != hash(ipv4Frame(protocol: 6, sourcePort: 1000, destinationPort: 2000)))
    }

    @Test func fragmentsIgnorePortsSoAllFragmentsOfADatagramStayTogether() {
        // First fragment (MF set) carries the UDP header; a later one (offset 1480) carries data
        // where the ports would be. Both must hash alike, and unlike the unfragmented flow.
        let first = ipv4Frame(sourcePort: 1000, destinationPort: 2000, fragment: 0x2000)
        let later = ipv4Frame(sourcePort: 0x6161, destinationPort: 0x6161, fragment: 185)
        #expect(hash(first) == hash(later))
        // ICMP has no ports: the packets of one host pair hash alike.
        #expect(hash(ipv4Frame(protocol: 1, sourcePort: 1, destinationPort: 2))
            == hash(ipv4Frame(protocol: 1, sourcePort: 3, destinationPort: 4)))
    }

    @Test func vlanTaggedFramesHashTheirInnerFlowAndVLAN() {
        let untagged = ipv4Frame(sourcePort: 1000, destinationPort: 2000)
        func tagged(_ vlan: UInt16) -> [UInt8] {
            Array(untagged[..<12]) + [0x81, 0x00] + be16(vlan) + Array(untagged[12...])
        }
        #expect(hash(tagged(10)) == hash(tagged(10)))
        #expect(hash(tagged(10)) != hash(tagged(11)))
        // The ports are still found behind the tag.
        let otherPort = ipv4Frame(sourcePort: 1001, destinationPort: 2000)
        #expect(hash(tagged(10)) != hash(Array(otherPort[..<12]) + [0x81, 0x00] + be16(10) + Array(otherPort[12...])))
    }

    @Test func nonIPFramesHashTheirAddresses() {
        let arp = hostB + hostA + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)
        var otherPayload = arp
        otherPayload[20] = 0xff
        #expect(hash(arp) == hash(otherPayload))
        #expect(hash(arp) != hash(hostA + hostB + [0x08, 0x06] + [UInt8](repeating: 0, count: 28)))
    }

    @Test func randomAndTruncatedFramesNeverTrap() {
        var generator = SeededGenerator(seed: 4789)
        for length in 0...200 {
            for _ in 0..<10 {
                var data = [UInt8].random(count: length, using: &generator)
                // Often make it look like IPv4, IPv6 or a VLAN so the deeper paths run.
                if length >= 14 {
                    let types: [[UInt8]] = [[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00], [0x88, 0xa8]]
                    data.replaceSubrange(12..<14, with: types[Int.random(in: 0..<4, using: &generator)])
                    if length >= 15 { data[14] = [0x45, 0x60, 0x46][Int.random(in: 0..<3, using: &generator)] }
                }
                #expect(VXLANSourcePort.range.contains(port(data)))
            }
        }
        let full = ipv4Frame(sourcePort: 1, destinationPort: 2)
        for length in 0...full.count { #expect(VXLANSourcePort.range.contains(port(Array(full[..<length])))) }
    }
}
