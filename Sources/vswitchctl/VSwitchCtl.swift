import ArgumentParser
import Foundation
import VSwitchControl
import VSwitchLab

struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Control socket (default /run/vswitch/vswitchd.sock, env VSWITCH_SOCKET).", valueName: "PATH"))
    var socket: String?

    @Flag(help: "Print machine-readable JSON (read commands).")
    var json = false

    @Option(help: ArgumentHelp("Seconds to wait for the daemon.", valueName: "SECONDS"))
    var timeout: Double = 30

    var client: ControlClient { ControlClient(path: ControlSocket.path(flag: socket), timeout: timeout) }

    func call<P: Encodable, R: Decodable>(_ method: ControlMethod, _ params: P, as: R.Type = R.self) throws -> R {
        try client.call(method, params, as: R.self)
    }

    /// Prints `value` as JSON when --json was given, else `text()`.
    func output<T: Encodable>(_ value: T, _ text: () -> String) throws {
        if json {
            let data = try JSONRPC.encoder(pretty: true).encode(value)
            print(String(decoding: data, as: UTF8.self))
        } else {
            let t = text()
            if !t.isEmpty { print(t, terminator: t.hasSuffix("\n") ? "" : "\n") }
        }
    }
}

struct VSwitchCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitchctl",
        abstract: "Configure and inspect vswitchd.",
        discussion: "Exit status: 0 on success, 1 on an error, 2 on a usage error. See vswitchctl(8) in Docs/man.",
        subcommands: [AddBridge.self, DeleteBridge.self, ListBridges.self, AddPort.self, DeletePort.self, ListPorts.self,
                      Show.self, FDB.self, Stats.self, SetBridge.self, SetPort.self, STP.self, BridgeNIC.self, UnbridgeNIC.self, Capture.self, GenKey.self, PubKey.self, GenPSK.self, Lab.self])

    /// Runs the command line with vswitchctl's exit codes: 0 ok, 1 error, 2 usage.
    static func run() -> Never {
        do {
            var command = try parseAsRoot(hoistingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            Foundation.exit(0)
        } catch let error as ControlClientError {
            fail(error.description)
        } catch let error as LabFileError {
            fail(error.description)
        } catch let error as LabError {
            fail(error.description)
        } catch let error as CommandFailure {
            fail(error.description)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))  // --help, --version
                Foundation.exit(0)
            }
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            fail(message(for: error))
        }
    }

    /// Global options may come before the command (`vswitchctl --json show`), as with ovs-vsctl;
    /// each command declares them, so those found before the command word move after it.
    static func hoistingGlobalOptions(_ args: [String]) -> [String] {
        var leading: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--json" { leading.append(a); i += 1; continue }
            if a == "--socket" || a == "--timeout" {
                leading.append(a)
                if i + 1 < args.count { leading.append(args[i + 1]) }
                i += 2
                continue
            }
            if a.hasPrefix("--socket=") || a.hasPrefix("--timeout=") { leading.append(a); i += 1; continue }
            break
        }
        guard !leading.isEmpty else { return args }
        let rest = Array(args[i...])
        // Keep a `--` separator (if any) last, with what follows it.
        if let dd = rest.firstIndex(of: "--") { return Array(rest[..<dd]) + leading + Array(rest[dd...]) }
        return rest + leading
    }

    static func fail(_ message: String) -> Never {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("vswitchctl: \(oneLine)\n".utf8))
        Foundation.exit(1)
    }
}

struct AddBridge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add-br", abstract: "Create switch BR.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Flag(name: .customLong("may-exist"), help: "Succeed if it exists.") var mayExist = false
    func run() throws { _ = try global.call(.addBridge, BridgeParams(bridge: bridge, mayExist: mayExist), as: OK.self) }
}

struct DeleteBridge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "del-br", abstract: "Delete switch BR and its ports.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Flag(name: .customLong("if-exists"), help: "Succeed if it does not exist.") var ifExists = false
    func run() throws { _ = try global.call(.deleteBridge, BridgeParams(bridge: bridge, ifExists: ifExists), as: OK.self) }
}

struct ListBridges: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-br", abstract: "List switches, one per line.")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        let r = try global.call(.listBridges, EmptyParams(), as: BridgeList.self)
        try global.output(r) { r.bridges.map { $0 + "\n" }.joined() }
    }
}

struct AddPort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-port", abstract: "Attach port PORT to switch BR.",
        discussion: """
            Types: tap creates TAP device PORT if absent (removed again by del-port) or attaches to an existing persistent TAP (left in place); \
            internal is a TAP standing for the switch itself (like the Linux br0); pcap binds existing interface PORT through libpcap; \
            tun creates TUN device PORT and joins it to the switch (answering ARP/ND for --peer); udp is a tunnel to other switches. \
            A secure udp port needs this site's private key (--key-file, from vswitchctl genkey) and the public key of each remote \
            (--peer-key, from vswitchctl pubkey at that site), in the order of the --remote options. \
            Example: vswitchctl add-port br0 tun1 --type udp --remote 198.51.100.7:4790 --encap secure \
            --key-file /etc/vswitch/site.key --peer-key KEY_OF_198.51.100.7
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port (device) name.") var port: String
    @Option(help: "Port type: tap, internal, pcap, tun or udp.") var type: String = "tap"
    @Option(help: ArgumentHelp("Move the device into network namespace NS.", valueName: "NS")) var netns: String?
    @Option(help: ArgumentHelp("Give the device an address (inside NS if given).", valueName: "CIDR")) var addr: String?
    @Option(help: "Device MTU.") var mtu: Int?
    @Option(help: "Device MAC address.") var mac: String?
    @Option(help: ArgumentHelp("tun: an address behind the TUN device the port answers ARP/ND for (repeatable).", valueName: "CIDR"))
    var peer: [String] = []
    @Option(help: ArgumentHelp("udp: local address and port (default 0.0.0.0:4789).", valueName: "ADDR:PORT")) var local: String?
    @Option(help: ArgumentHelp("udp: a remote switch (repeatable; host names are resolved when the port is added).", valueName: "ADDR:PORT"))
    var remote: [String] = []
    @Option(help: "udp: VXLAN network identifier (default 1).") var vni: Int?
    @Option(help: "udp: vxlan (RFC 7348) or secure (authenticated encryption).") var encap: String?
    @Option(name: .customLong("key-file"), help: ArgumentHelp("udp, secure: this site's private key file (vswitchctl genkey -w FILE).", valueName: "FILE"))
    var keyFile: String?
    @Option(name: .customLong("peer-key"), help: ArgumentHelp("udp, secure: a remote's public key (vswitchctl pubkey at that site); one per --remote, the i-th for the i-th.", valueName: "KEY"))
    var peerKey: [String] = []
    @Option(name: .customLong("psk-file"), help: ArgumentHelp("udp, secure: an optional pre-shared key file, the same at both ends (vswitchctl genpsk -w FILE).", valueName: "FILE"))
    var pskFile: String?
    @Option(help: ArgumentHelp("udp, secure: the AEAD, aes-256-gcm (default; fast on CPUs with AES instructions) or chacha20-poly1305 (faster on CPUs without them); both ends must agree.", valueName: "CIPHER"))
    var cipher: String?
    @Option(help: ArgumentHelp("udp, vxlan: userspace (default: vswitchd encapsulates) or kernel (a kernel VXLAN device does, vswitchd switches; no per-remote counters).", valueName: "DATAPATH"))
    var datapath: String?
    @Flag(name: .customLong("may-exist"), help: "Succeed if the port exists.") var mayExist = false
    func run() throws {
        let spec = PortSpec(name: port, type: type, netns: netns, addr: addr, mtu: mtu, mac: mac, peers: peer.isEmpty ? nil : peer,
                            local: local, remotes: remote.isEmpty ? nil : remote, vni: vni, encap: encap, keyFile: keyFile,
                            peerKeys: peerKey.isEmpty ? nil : peerKey, pskFile: pskFile, cipher: cipher, datapath: datapath)
        _ = try global.call(.addPort, AddPortParams(bridge: bridge, port: spec, mayExist: mayExist), as: OK.self)
    }
}

struct DeletePort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "del-port", abstract: "Detach port PORT from switch BR.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port name.") var port: String
    @Flag(name: .customLong("if-exists"), help: "Succeed if the port does not exist.") var ifExists = false
    func run() throws { _ = try global.call(.deletePort, PortParams(bridge: bridge, port: port, ifExists: ifExists), as: OK.self) }
}

struct ListPorts: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list-ports", abstract: "List the ports of BR, one per line.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    func run() throws {
        let r = try global.call(.listPorts, BridgeParams(bridge: bridge), as: PortList.self)
        try global.output(r) { r.ports.map { $0 + "\n" }.joined() }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show every switch and port.")
    @OptionGroup var global: GlobalOptions
    func run() throws {
        let r = try global.call(.show, EmptyParams(), as: ShowResult.self)
        try global.output(r) { Render.show(r) }
    }
}

struct FDB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdb", abstract: "Show and change the MAC table.",
        subcommands: [FDBShow.self, FDBFlush.self, FDBAdd.self, FDBDelete.self])
}

struct FDBShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "List MAC, port, VLAN, age, static/learned.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    func run() throws {
        let r = try global.call(.fdbShow, BridgeParams(bridge: bridge), as: FDBShowResult.self)
        try global.output(r) { Render.fdb(r) }
    }
}

struct FDBFlush: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "flush", abstract: "Forget learned MACs (of PORT only, if given).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port name.") var port: String?
    func run() throws { _ = try global.call(.fdbFlush, PortParams(bridge: bridge, port: port), as: OK.self) }
}

struct FDBAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a static entry MAC -> PORT.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "MAC address.") var mac: String
    @Argument(help: "Port name.") var port: String
    @Option(help: "VLAN (0-4094).") var vlan: Int?
    func run() throws { _ = try global.call(.fdbAdd, FDBEntryParams(bridge: bridge, mac: mac, port: port, vlan: vlan), as: OK.self) }
}

struct FDBDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "del", abstract: "Delete the entry for MAC.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "MAC address.") var mac: String
    @Option(help: "VLAN (0-4094).") var vlan: Int?
    func run() throws { _ = try global.call(.fdbDelete, FDBEntryParams(bridge: bridge, mac: mac, vlan: vlan), as: OK.self) }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Per-port rx/tx packets, bytes, drops and errors.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port name.") var port: String?
    func run() throws {
        let r = try global.call(.stats, PortParams(bridge: bridge, port: port), as: StatsResult.self)
        try global.output(r) { Render.stats(r) }
    }
}

/// KEY=VALUE arguments as a dictionary (`set` sends them as they are; `set-port` parses them first).
func keyValues(_ args: [String]) throws -> [String: String] {
    var dict: [String: String] = [:]
    for s in args {
        let parts = s.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("expected KEY=VALUE, got \"\(s)\"") }
        dict[String(parts[0])] = String(parts[1])
    }
    return dict
}

struct SetPort: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-port", abstract: "Change port settings: impairments, learning, isolation, limits, VLANs.",
        discussion: PortSettings.help + """
             Examples: vswitchctl set-port br0 tap1 tag=10; vswitchctl set-port br0 tun0 vlan-mode=trunk trunks=10,20; \
            vswitchctl set-port br0 tap1 vlan-mode=none; vswitchctl set-port br0 tap1 stp-edge=on
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port name.") var port: String
    @Argument(help: "KEY=VALUE settings.") var settings: [String]

    func validate() throws {
        if settings.isEmpty { throw ValidationError("give at least one KEY=VALUE") }
        _ = try keyValues(settings)
    }

    func run() throws {
        // Checked here, before anything is sent: each key and value, and the rules between keys
        // that the change decides alone. The daemon checks the rest against the port's settings.
        let change: PortSettings
        do {
            change = try PortSettings(parsing: try keyValues(settings))
            try change.validateAsChange()
        } catch let error as PortSettingError {
            throw CommandFailure(error.description)
        }
        _ = try global.call(.setPort, SetPortParams(bridge: bridge, port: port, settings: change), as: OK.self)
    }
}

struct SetBridge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "Change switch settings: ageing-time, max-macs, flood-unknown, stp and its timers.",
        discussion: """
            Keys: ageing-time=S (default 300), max-macs=N (default 65536), flood-unknown=on|off, stp=on|off (RSTP, falling back \
            to 802.1D toward legacy bridges), stp-priority=N (0-61440, steps of 4096, default 32768), stp-hello-time=S (1-10, \
            default 2), stp-forward-delay=S (4-30, default 15), stp-max-age=S (6-40, default 20). The timers must satisfy \
            2 x (forward-delay - 1) >= max-age >= 2 x (hello-time + 1). Example: vswitchctl set br0 stp=on stp-priority=4096
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "KEY=VALUE settings.") var settings: [String]

    func validate() throws {
        if settings.isEmpty { throw ValidationError("give at least one KEY=VALUE") }
        _ = try keyValues(settings)
    }

    func run() throws {
        _ = try global.call(.set, SetParams(bridge: bridge, settings: try keyValues(settings)), as: OK.self)
    }
}

struct STP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stp", abstract: "Show the spanning tree.", subcommands: [STPShow.self])
}

struct STPShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "The bridge and root identifiers, and each port's role and state.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    func run() throws {
        let r = try global.call(.stpShow, BridgeParams(bridge: bridge), as: STPShowResult.self)
        try global.output(r) { Render.stp(r) }
    }
}

struct BridgeNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridge-nic", abstract: "Join host NIC to switch BR, moving its addresses and routes to the internal port BR.",
        discussion: """
            What `brctl addbr br0; brctl addif br0 eth0` and OpenVPN's bridge-start script do: NIC becomes a pcap port of BR, \
            the internal port BR (created if absent, with NIC's MAC) takes NIC's IPv4/IPv6 addresses and routes, default route included. \
            unbridge-nic, del-br and vswitchd's shutdown put them back. Example: vswitchctl bridge-nic br0 eth0
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name (also the internal port's name).") var bridge: String
    @Argument(help: "The host interface to join.") var nic: String
    @Option(help: ArgumentHelp("NIC is in network namespace NS (the internal port is created there).", valueName: "NS")) var netns: String?
    func run() throws { _ = try global.call(.bridgeNIC, BridgeNICParams(bridge: bridge, nic: nic, netns: netns), as: OK.self) }
}

struct UnbridgeNIC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unbridge-nic", abstract: "Give NIC back its addresses and routes and take it off switch BR.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "The bridged interface.") var nic: String
    @Option(help: ArgumentHelp("NIC is in network namespace NS.", valueName: "NS")) var netns: String?
    func run() throws { _ = try global.call(.unbridgeNIC, BridgeNICParams(bridge: bridge, nic: nic, netns: netns), as: OK.self) }
}
