import Testing
import VSwitchWire

/// Hostile input for the offload helpers: random bytes, random headers, mutated and truncated
/// frames. Nothing may trap; every segment must lie inside the scratch (or be the frame itself);
/// and whatever the segmenter does build from a superframe must carry valid checksums.
@Suite struct OffloadFuzzTests {
    static let gsoTypes: [VirtioNetHeader.GSOType] = [.none, .tcpv4, .tcpv6, .udpL4, .udp, .ecn,
                                                       VirtioNetHeader.GSOType(rawValue: 0x81), VirtioNetHeader.GSOType(rawValue: 0x09)]
    static let mtus = [Int.min, -1, 0, 1, 40, 68, 576, 1_280, 1_500, 9_000, 65_535, Int.max]

    static func randomHeader(for count: Int, using generator: inout SeededGenerator) -> VirtioNetHeader {
        // Mostly plausible values near the frame's size, sometimes anything.
        func nearCount() -> UInt16 {
            Bool.random(using: &generator) ? .random(in: 0...UInt16(min(count + 4, 65_535)), using: &generator)
                                           : .random(in: 0...UInt16.max, using: &generator)
        }
        let flags = VirtioNetHeader.Flags(rawValue: .random(in: 0...3, using: &generator))
        let gsoType = gsoTypes.randomElement(using: &generator)!
        let segmentHeaderLength = nearCount()
        let gsoSize: UInt16 = Int.random(in: 0...3, using: &generator) == 0 ? nearCount() : .random(in: 0...2_000, using: &generator)
        let checksumStart = nearCount()
        let checksumOffset: UInt16 = Bool.random(using: &generator) ? nearCount() : [6, 16].randomElement(using: &generator)!
        return VirtioNetHeader(flags: flags, gsoType: gsoType, segmentHeaderLength: segmentHeaderLength, gsoSize: gsoSize,
                               checksumStart: checksumStart, checksumOffset: checksumOffset)
    }

    /// Runs all three helpers over `frame` with `header`; returns whether the segmenter succeeded.
    @discardableResult
    static func exercise(_ frame: [UInt8], header: VirtioNetHeader?, mtu: Int, scratchCount: Int = 65_536,
                         verifyingSegments: Bool = false) -> Bool {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: scratchCount, alignment: 8)
        defer { scratch.deallocate() }
        let segmented: Bool = withBytes(frame, misalignment: frame.count % 4) { buffer in
            var calls = 0
            let result = GSOSegmenter.forEachSegment(of: buffer, header: header, scratch: scratch) { segment in
                calls += 1
                let inScratch = FuzzTests.contains(UnsafeRawBufferPointer(scratch), segment)
                #expect(inScratch || (segment.baseAddress == buffer.baseAddress && segment.count == buffer.count))
                if verifyingSegments, let header, !header.isPlain, header.gsoType.withoutECN != .none {
                    #expect(segmentChecksumsHold(Array(segment)), "segment of \(frame.count)-byte frame with \(header)")
                }
                return calls < 200
            }
            switch result {
            case .success(let count): #expect(count >= 1 && calls == min(count, 200)); return true
            case .failure: #expect(calls == 0); return false
            }
        }
        // Gathering, on what is a superframe to the segmenter, hands over the same segments.
        if let header, header.gsoType.withoutECN != .none {
            let gathered = gatheredSegments(of: frame, header: header, stopAfter: 200)
            let built = segments(of: frame, header: header, stopAfter: 200)
            switch (gathered.result, built.result) {
            case (.success, .success):
                #expect(gathered.result == built.result && gathered.segments == built.segments && gathered.payloadsInFrame)
            case (.failure(let g), .failure(let b)):
                #expect(g == b, "both refuse, for the same reason")
            case (.failure(let g), .success):
                Issue.record("gathering refused (\(g)) a frame the segmenter takes")
            case (.success, .failure(let b)):
                #expect(b == .scratchTooSmall, "only the segmenter needs scratch")
            }
        }
        var copy = frame
        if var header {
            _ = copy.withUnsafeMutableBytes { header.completeChecksum(in: $0) }
        }
        copy = frame
        _ = copy.withUnsafeMutableBytes { VirtioNetHeader.infer(frame: $0, mtu: mtu) }
        return segmented
    }

    /// The IPv4 header checksum (if IPv4) and the TCP/UDP checksum of a segment hold.
    static func segmentChecksumsHold(_ segment: [UInt8]) -> Bool {
        var offset = 12
        var etherType = Int(segment[offset]) << 8 | Int(segment[offset + 1])
        while etherType == 0x8100 || etherType == 0x88a8 {
            offset += 4
            etherType = Int(segment[offset]) << 8 | Int(segment[offset + 1])
        }
        let network = offset + 2
        if etherType == 0x0800 {
            let headerLength = Int(segment[network] & 0x0f) * 4
            guard InternetChecksumTests.reference(Array(segment[network..<network + headerLength])) == 0 else { return false }
        }
        return OffloadFrame.transportChecksumHolds(segment, networkOffset: network)
    }

    /// Valid frames of every kind, with the header a TAP would give them.
    static func seeds() -> [(frame: [UInt8], header: VirtioNetHeader)] {
        var seeds: [([UInt8], VirtioNetHeader)] = []
        for (ipv6, tcp, vlan) in [(false, true, false), (true, true, true), (false, false, true), (true, false, false)] {
            let superframe = OffloadFrame(ipv6: ipv6, vlan: vlan, tcp: tcp, payload: OffloadFrame.payload(count: 600), checksum: .partial)
            seeds.append((superframe.bytes, GSOSegmenterTests.tsoHeader(superframe, gsoSize: 100)))
            let small = OffloadFrame(ipv6: ipv6, vlan: !vlan, tcp: tcp, payload: OffloadFrame.payload(count: 30),
                                     ipv4OptionBytes: ipv6 ? 0 : 8, checksum: .partial)
            seeds.append((small.bytes, VirtioNetHeader(flags: .needsChecksum, checksumStart: UInt16(small.transportOffset),
                                                       checksumOffset: tcp ? 16 : 6)))
        }
        return seeds
    }

    @Test func randomBytesAndHeaders() {
        var generator = SeededGenerator(seed: 0x0ff1_0ad)
        var successes = 0
        for iteration in 0..<6_000 {
            var data = [UInt8].random(count: .random(in: 0...200, using: &generator), using: &generator)
            // Steer a share past the first checks: Ethernet type IPv4/IPv6, the IP version, TCP/UDP.
            if data.count >= 40 && iteration % 2 == 0 {
                let ipv6 = iteration % 4 == 0
                data[12] = ipv6 ? 0x86 : 0x08
                data[13] = ipv6 ? 0xdd : 0x00
                data[14] = ipv6 ? 0x60 : 0x45
                data[ipv6 ? 20 : 23] = Bool.random(using: &generator) ? 6 : 17
                if !ipv6 { data[20] &= 0x1f; data[21] = 0 }
            }
            let header = iteration % 7 == 0 ? nil : Self.randomHeader(for: data.count, using: &generator)
            if Self.exercise(data, header: header, mtu: Self.mtus.randomElement(using: &generator)!,
                             scratchCount: .random(in: 0...300, using: &generator), verifyingSegments: true) {
                successes += 1
            }
        }
        #expect(successes > 500, "plain headers and pass-through must get through")
    }

    @Test func everyTruncation() {
        for (frame, header) in Self.seeds() {
            #expect(Self.exercise(frame, header: header, mtu: 1_500), "the untruncated seed is valid")
            let checksumEnd = Int(header.checksumStart) + Int(header.checksumOffset) + 2
            for length in 0...min(200, frame.count - 1) {
                let truncated = Array(frame[..<length])
                // Every length field now reaches past the end: the segmenter must refuse a superframe.
                // Checksum completion is generic (csum_start may point into a tunnelled packet), so
                // it refuses only once the checksum field is cut.
                let segmented = Self.exercise(truncated, header: header, mtu: 1_500)
                #expect(segmented == (header.gsoType == .none && length >= checksumEnd), "length \(length)")
                var copy = truncated
                let superframeGuess = copy.withUnsafeMutableBytes { VirtioNetHeader.infer(frame: $0, mtu: 100) }
                #expect(superframeGuess == nil && copy == truncated, "infer on length \(length)")
                if header.gsoType == .none {
                    var h = header
                    let done = copy.withUnsafeMutableBytes { h.completeChecksum(in: $0) }
                    #expect(done == (length >= checksumEnd), "complete on length \(length)")
                }
            }
        }
    }

    @Test func mutatedFrames() {
        var generator = SeededGenerator(seed: 0xbad_f00d)
        let seeds = Self.seeds()
        var successes = 0, superframes = 0
        for iteration in 0..<4_000 {
            var (data, header) = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                // Mostly in the headers, where the decisions are.
                let index = Int.random(in: 0..<min(data.count, Bool.random(using: &generator) ? 100 : data.count), using: &generator)
                data[index] = .random(in: 0...255, using: &generator)
            }
            if iteration % 5 == 0 { header = Self.randomHeader(for: data.count, using: &generator) }
            if iteration % 3 == 0 { data.removeLast(.random(in: 0...data.count / 4, using: &generator)) }
            if Self.exercise(data, header: header, mtu: Self.mtus.randomElement(using: &generator)!, verifyingSegments: true) {
                successes += 1
                if !header.isPlain && header.gsoType.withoutECN != .none { superframes += 1 }
            }
        }
        #expect(successes > 1_000, "mutations outside the headers leave frames segmentable")
        #expect(superframes > 300, "and superframes among them, whose segments are checked")
    }
}
