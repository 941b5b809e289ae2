import VSwitchControl
import VSwitchPorts
import VSwitchTunnel
import VSwitchWire

/// The one place that knows the kinds of port (`add-port --type`): which options apply to which
/// kind, how a saved spec is read by a newer vswitchd, and how each kind's device is opened.
/// `SwitchService` asks it for a `DevicePort` and then uses only the capability protocols of
/// VSwitchPorts (`TunnelPort`, `SecureSessionPort`, ...), never a port's class.
///
/// Injected: vswitchd uses `SystemPortFactory` (devices, sockets, key files); unit tests give one
/// that opens in-memory ports, so the daemon's requests run without root.
public protocol PortFactory {
    /// The kinds it makes, for messages.
    var kinds: [String] { get }
    /// Checks a new port's spec for its kind (which options apply, their values) without touching
    /// the system, and returns the spec to open and save: with the defaults that must never change
    /// under a port filled in (a secure port's cipher). Throws a message naming the option.
    func validate(_ spec: PortSpec) throws -> PortSpec
    /// A spec from the state file as this vswitchd opens it (defaults named since, filled in), or
    /// the reason it can no longer be opened. A returned spec that differs is saved again.
    func upgrade(_ saved: PortSpec) throws -> PortSpec
    /// Opens and configures the device of `spec` (validated); a failure leaves nothing behind.
    func open(_ spec: PortSpec) throws -> any DevicePort
    /// The keys of a port with keys (a secure tunnel) read again from its files (SIGHUP); nil for
    /// a port without.
    func reloadKeys(_ spec: PortSpec) throws -> SecureKeys?
}

/// A secure port's keys as read from its files, and a log line's worth of where from (paths and
/// the public key only: never a secret).
public struct SecureKeys {
    public var privateKey: SecurePrivateKey
    public var presharedKey: SecureKey?
    public var summary: String
}

/// The real port kinds: TAP and internal ports, pcap, TUN, and UDP tunnels (VXLAN or secure,
/// vswitchd's datapath or the kernel's).
public struct SystemPortFactory: PortFactory {
    public init() {}

    public var kinds: [String] { ["tap", "internal", "pcap", "tun", "udp"] }

    public func validate(_ given: PortSpec) throws -> PortSpec {
        var spec = given
        // An internal port is the switch's own interface on the host (the Linux br0): a TAP
        // that vswitchd creates and configures, like any TAP port.
        guard kinds.contains(spec.type) else {
            throw fail("unknown port type \(spec.type) (known: \(kinds.joined(separator: ", ")))")
        }
        // The cipher a secure port gets is saved by name, so a later change of the default
        // cannot change a port's cipher under its peer.
        if spec.type == "udp", spec.encap == "secure", spec.cipher == nil { spec.cipher = SecureCipher.default.name }
        if spec.type == "pcap", spec.addr != nil || spec.mtu != nil || spec.mac != nil {
            throw fail("a pcap port binds an existing interface as it is: --addr, --mtu and --mac do not apply")
        }
        if spec.type == "udp" {
            if spec.addr != nil || spec.mtu != nil || spec.mac != nil { throw fail("a udp port is a socket, not a device: --addr, --mtu and --mac do not apply") }
        } else if spec.local != nil || spec.remotes != nil || spec.vni != nil || spec.encap != nil || spec.keyFile != nil
                    || spec.peerKeys != nil || spec.pskFile != nil || spec.cipher != nil || spec.datapath != nil {
            throw fail("--local, --remote, --vni, --encap, --key-file, --peer-key, --psk-file, --cipher and --datapath apply to udp ports only")
        }
        if let mtu = spec.mtu, !(68...65_521).contains(mtu) { throw fail("invalid mtu \(mtu) (68-65521)") }
        if let mac = spec.mac {
            guard let m = MACAddress(mac), !m.isMulticast, !m.isZero else { throw fail("invalid mac \(mac) (a unicast MAC like 02:00:00:00:00:01)") }
        }
        if let addr = spec.addr, !Self.isCIDR(addr) { throw fail("invalid addr \(addr) (an address with prefix length, like 198.18.0.1/24)") }
        if let peers = spec.peers {
            guard spec.type == "tun" else { throw fail("--peer applies to tun ports only") }
            for peer in peers where !Self.isCIDR(peer) { throw fail("invalid peer \(peer) (an address with prefix length, like 198.18.5.2/24)") }
        }
        return spec
    }

    public func upgrade(_ saved: PortSpec) throws -> PortSpec {
        var spec = saved
        // A secure port saved without peer keys was made for version 1 of the secure mode (one
        // shared key), which is gone: it stays configured, refused, saying how to move; it is
        // never reinterpreted (its key file is no private key).
        if spec.type == "udp", spec.encap == "secure", spec.peerKeys == nil { throw fail(Self.version1Refusal(spec.name)) }
        // A secure port saved without a cipher was made when ChaCha20-Poly1305 was the default
        // (saved by name since): it keeps it.
        if spec.type == "udp", spec.encap == "secure", spec.cipher == nil { spec.cipher = SecureCipher.chacha20Poly1305.name }
        return spec
    }

    public func open(_ spec: PortSpec) throws -> any DevicePort {
        switch spec.type {
        case "tap", "internal":
            let tap: TAPPort
            do { tap = try TAPPort(name: spec.name, namespace: spec.netns) } catch { throw fail("\(error)") }
            do {
                try tap.configure(mac: spec.mac.flatMap { MACAddress($0)?.octets }, mtu: spec.mtu, address: spec.addr)
            } catch {
                tap.close()
                throw fail("cannot configure \(spec.name): \(error)")
            }
            return tap
        case "pcap":
            do { return try PcapPort(name: spec.name, namespace: spec.netns) } catch { throw fail("\(error)") }
        case "udp":
            return try openTunnel(spec)
        case "tun":
            let tun: TUNPort
            do { tun = try TUNPort(name: spec.name, namespace: spec.netns, mac: spec.mac.flatMap(MACAddress.init), peers: spec.peers ?? []) } catch {
                throw fail("\(error)")
            }
            do { try tun.configure(mtu: spec.mtu, address: spec.addr) } catch {
                tun.close()
                throw fail("cannot configure \(spec.name): \(error)")
            }
            return tun
        default:
            throw fail("unknown port type \(spec.type) (known: \(kinds.joined(separator: ", ")))")
        }
    }

    public func reloadKeys(_ spec: PortSpec) throws -> SecureKeys? {
        guard spec.type == "udp", spec.encap == "secure", let path = spec.keyFile else { return nil }
        let peers = (spec.peerKeys ?? []).compactMap { SecurePublicKey(base64: $0) }
        let (privateKey, presharedKey) = try loadSecureKeys(keyFile: path, pskFile: spec.pskFile, peers: peers)
        let psk = spec.pskFile.map { " and pre-shared key from \($0)" } ?? ""
        return SecureKeys(privateKey: privateKey, presharedKey: presharedKey,
                          summary: "private key from \(path) (public key \(privateKey.publicKey))\(psk)")
    }

    // MARK: - UDP tunnels

    /// A udp port: the kernel's VXLAN device (`--datapath kernel`) or vswitchd's own tunnel.
    private func openTunnel(_ spec: PortSpec) throws -> any DevicePort {
        let kernel: Bool
        switch spec.datapath ?? "userspace" {
        case "userspace": kernel = false
        case "kernel": kernel = true
        case let other: throw fail("invalid datapath \(other) (userspace or kernel)")
        }
        if kernel && (spec.encap ?? "vxlan") != "vxlan" {
            throw fail("--datapath kernel takes --encap vxlan only (the kernel has no secure mode)")
        }
        let encapsulation: UDPTunnelPort.Encapsulation
        switch spec.encap ?? "vxlan" {
        case "vxlan":
            if spec.keyFile != nil { throw fail("--key-file applies to --encap secure only") }
            if spec.peerKeys != nil { throw fail("--peer-key applies to --encap secure only") }
            if spec.pskFile != nil { throw fail("--psk-file applies to --encap secure only") }
            if spec.cipher != nil { throw fail("--cipher applies to --encap secure only") }
            encapsulation = .vxlan
        case "secure":
            encapsulation = .secure(try secureConfiguration(spec))
        case let other:
            throw fail("invalid encap \(other) (vxlan or secure)")
        }
        let vni = spec.vni ?? 1
        guard (0...Int(VXLANHeader.maximumVNI)).contains(vni) else { throw fail("invalid vni \(vni) (0-16777215)") }
        if kernel {
            do {
                return try KernelVXLANPort(name: spec.name, namespace: spec.netns, local: spec.local, remotes: spec.remotes ?? [],
                                           vni: UInt32(vni))
            } catch { throw fail("\(error)") }
        }
        do {
            return try UDPTunnelPort(name: spec.name, namespace: spec.netns, local: spec.local, remotes: spec.remotes ?? [],
                                     vni: UInt32(vni), encapsulation: encapsulation)
        } catch { throw fail("\(error)") }
    }

    /// The secure mode of `spec`: this site's private key (`--key-file`), the public key of each
    /// remote (`--peer-key`, in the order of the remotes), the optional pre-shared key
    /// (`--psk-file`) and the cipher. The cheap checks come first, the key files last; the key
    /// bytes live only in the returned configuration (the port's engine takes them, nothing here
    /// keeps them), and no message or log line holds a secret: only paths and public keys.
    private func secureConfiguration(_ spec: PortSpec) throws -> SecureConfiguration {
        guard let keyPath = spec.keyFile else {
            throw fail("--encap secure needs --key-file FILE, this site's private key (make one with vswitchctl genkey -w FILE)")
        }
        let cipher: SecureCipher
        if let name = spec.cipher {
            guard let named = SecureCipher(name: name) else {
                throw fail("invalid cipher \(name) (\(SecureCipher.allCases.map(\.name).joined(separator: " or ")))")
            }
            cipher = named
        } else {
            cipher = .default
        }
        let texts = spec.peerKeys ?? []
        let remoteCount = spec.remotes?.count ?? 0
        guard texts.count == remoteCount else {
            throw fail("--encap secure needs one --peer-key per --remote (\(remoteCount) remotes, \(texts.count) keys)")
        }
        guard texts.count <= SecureConfiguration.maximumPeers else {
            throw fail("--encap secure takes at most \(SecureConfiguration.maximumPeers) remotes (\(texts.count) given): split them over several ports")
        }
        var peers: [SecurePublicKey] = []
        for text in texts {
            guard let key = SecurePublicKey(base64: text) else {
                throw fail("invalid --peer-key \(text): expected base64 of 32 bytes, as vswitchctl pubkey prints")
            }
            guard !peers.contains(key) else {
                throw fail("--peer-key \(key) is given twice: each remote is a site with its own key pair")
            }
            peers.append(key)
        }
        let (privateKey, presharedKey) = try loadSecureKeys(keyFile: keyPath, pskFile: spec.pskFile, peers: peers)
        return SecureConfiguration(privateKey: privateKey, peers: peers, presharedKey: presharedKey, cipher: cipher,
                                   timers: .fromEnvironment())
    }

    /// The private key in `keyFile` (checked against the remotes' public keys `peers`) and the
    /// pre-shared key in `pskFile`, if any: at add-port, at each start, and on SIGHUP.
    private func loadSecureKeys(keyFile: String, pskFile: String?, peers: [SecurePublicKey]) throws -> (SecurePrivateKey, SecureKey?) {
        let privateKey: SecurePrivateKey
        do { privateKey = SecurePrivateKey(try SecureKeyFile.loadKey(path: keyFile)) } catch { throw fail("\(error)") }
        try checkPeers(peers, against: privateKey, keyPath: keyFile)
        var presharedKey: SecureKey?
        if let pskFile {
            do { presharedKey = try SecureKeyFile.loadKey(path: pskFile) } catch { throw fail("\(error)") }
        }
        return (privateKey, presharedKey)
    }

    /// Refuses remotes named by this site's own public key (a tunnel to itself) or by its private
    /// key (a secret typed on a command line, which would also end up in the state file).
    private func checkPeers(_ peers: [SecurePublicKey], against privateKey: SecurePrivateKey, keyPath: String) throws {
        let own = privateKey.publicKey
        if peers.contains(own) {
            throw fail("--peer-key \(own) is this port's own public key (of --key-file \(keyPath)): give the public key of the remote's site (vswitchctl pubkey there)")
        }
        let secret = privateKey.base64
        if peers.contains(where: { $0.base64 == secret }) {
            throw fail("a --peer-key is this port's private key (the key in \(keyPath)), which must stay secret: give the remote's public key (vswitchctl pubkey there), and make a new private key (vswitchctl genkey), as this one was exposed")
        }
    }

    /// Why a secure port saved by a vswitchd from before version 2 of the secure mode (a shared
    /// key in `key_file`, no `peer_keys`) is not opened: its peers speak version 1, which is gone,
    /// and its key file cannot be taken for a private key without changing what it means.
    static func version1Refusal(_ port: String) -> String {
        "port \(port) was saved with the version 1 secure mode (one shared key), which is gone: make a key pair per site (vswitchctl genkey -w FILE; vswitchctl pubkey --key-file FILE), then del-port and add-port with --key-file and one --peer-key per --remote (the old shared key file may stay as --psk-file); see Docs/secure-wire-format.md"
    }

    static func isCIDR(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let len = Int(parts[1]) else { return false }
        if IPv4Address(String(parts[0])) != nil { return (0...32).contains(len) }
        if IPv6Address(String(parts[0])) != nil { return (0...128).contains(len) }
        return false
    }

    private func fail(_ message: String) -> JSONRPC.ErrorObject { .init(code: .failed, message: message) }
}
