import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import VSwitchLab

/// Every example in etc/labs parses.
@Suite struct LabExampleFileTests {
    /// The package root: two directories up from this file's folder.
    static let root: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/VSwitchLabTests/LabExampleFileTests.swift
        return parts.joined(separator: "/")
    }()

    static var exampleFiles: [String] {
        let directory = "\(root)/etc/labs"
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".yaml") || name.hasSuffix(".yml") { names.append("\(directory)/\(name)") }
        }
        return names.sorted()
    }

    @Test func theExamplesExist() {
        let names = Self.exampleFiles.map { $0.split(separator: "/").last.map(String.init) ?? "" }
        for expected in ["two-hosts.yaml", "vlans.yaml", "triangle.yaml"] {
            #expect(names.contains(expected), "missing etc/labs/\(expected)")
        }
    }

    @Test(arguments: exampleFiles)
    func exampleParses(path: String) throws {
        let lab = try LabTopology.load(path: path)
        #expect(lab.file == path)
        #expect(!lab.nodes.isEmpty)
        // Only the documentation ranges.
        for node in lab.nodes {
            for link in node.links {
                var addresses = link.addresses
                if case .veth(_, let peer, _) = link.kind { addresses += peer }
                for address in addresses {
                    #expect(address.hasPrefix("198.18.") || address.hasPrefix("198.19.") || address.hasPrefix("2001:2:"), "\(address)")
                }
            }
        }
    }

    @Test func twoHostsModel() throws {
        let lab = try LabTopology.load(path: "\(Self.root)/etc/labs/two-hosts.yaml")
        #expect(lab.switches.map(\.name) == ["sw1"])
        #expect(lab.nodes.map(\.name) == ["h1", "h2"])
        #expect(lab.nodes.map { $0.links.map(\.addresses) } == [[["198.18.0.1/24"]], [["198.18.0.2/24"]]])
    }

    @Test func triangleModel() throws {
        let lab = try LabTopology.load(path: "\(Self.root)/etc/labs/triangle.yaml")
        #expect(lab.interfaces(of: "r1") == ["trir1e0", "trir1e1", "trir1p0"])
        #expect(lab.interfaces(of: "r3") == ["trir3e0", "r3-to-r2"])
        let r2 = try #require(lab.node(named: "r2"))
        #expect(r2.links[0].impairment == LabImpairment(rateBytesPerSecond: 12_500_000))
        let c1 = try #require(lab.node(named: "c1"))
        #expect(c1.links[0].impairment == LabImpairment(delayMicroseconds: 20_000, jitterMicroseconds: 5_000, lossPercent: 1))
    }
}
