import ArgumentParser
import Foundation
import VSwitchControl
import VSwitchLab

struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab", abstract: "Build lab topologies of network namespaces from a YAML file (Docs/labs.md).",
        subcommands: [LabUp.self, LabDown.self, LabStatusCommand.self, LabExec.self, LabGenerate.self])
}

struct LabOptions: ParsableArguments {
    @Argument(help: "Topology file (YAML).") var file: String
    @Option(help: ArgumentHelp("vswitchd executable for a lab with its own daemon (default: next to vswitchctl, then PATH).", valueName: "PATH"))
    var vswitchd: String?

    func builder() throws -> LabBuilder {
        let topology = try LabTopology.load(path: file)
        return LabBuilder(topology: topology, vswitchdPath: vswitchd ?? Self.defaultVswitchd()) { line in
            // Progress goes out line by line, even into a pipe.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }

    static func defaultVswitchd() -> String {
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("vswitchd").path
            if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        }
        return "vswitchd"
    }
}

struct LabUp: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Build the lab (idempotent; a failure removes what it made).")
    @OptionGroup var lab: LabOptions
    @OptionGroup var global: GlobalOptions
    func run() throws { try lab.builder().up() }
}

struct LabDown: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Remove everything the lab made, and nothing else.")
    @OptionGroup var lab: LabOptions
    @OptionGroup var global: GlobalOptions
    func run() throws { try lab.builder().down() }
}

struct LabStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Nodes, links, addresses and reachability.")
    @OptionGroup var lab: LabOptions
    @OptionGroup var global: GlobalOptions
    func run() throws {
        let status = try lab.builder().status()
        try global.output(status) { status.render() }
    }
}

struct LabExec: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "exec", abstract: "Run a command inside a node: lab exec FILE NODE -- CMD...")
    @OptionGroup var lab: LabOptions
    @Argument(help: "Node name.") var node: String
    @Argument(parsing: .captureForPassthrough, help: "Command and arguments (after --).") var command: [String] = []
    func run() throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        let status = try lab.builder().exec(node: node, argv)
        Foundation.exit(status)
    }
}

struct LabGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate", abstract: "Print a topology of N hosts on switches (for scale tests and benchmarks).")
    @Argument(help: "Lab name (1-8 of [a-z0-9-]).") var name: String
    @Option(help: "Number of nodes.") var nodes: Int = 50
    @Option(name: .customLong("per-switch"), help: "Nodes per switch.") var perSwitch: Int = 10
    func validate() throws {
        guard nodes >= 1, nodes <= 100_000 else { throw ValidationError("--nodes must be 1-100000") }
        guard perSwitch >= 1 else { throw ValidationError("--per-switch must be at least 1") }
    }
    func run() throws {
        let yaml = LabTopology.generated(name: name, nodes: nodes, perSwitch: perSwitch)
        _ = try LabTopology.parse(yaml: yaml, file: "(generated)")  // what we print must load
        print(yaml, terminator: yaml.hasSuffix("\n") ? "" : "\n")
    }
}
