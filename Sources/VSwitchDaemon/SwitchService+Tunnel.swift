import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchPorts
import VSwitchTunnel

/// UDP tunnel ports: opening them from a port spec (the secure mode's keys included), what `show`
/// says of them, key reloads on SIGHUP.
extension SwitchService {
    func openTunnel(_ spec: PortSpec) throws -> any DevicePort {
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
    func secureConfiguration(_ spec: PortSpec) throws -> SecureConfiguration {
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

    func tunnelInfo(_ port: ManagedPort, on bridge: ManagedBridge) -> TunnelInfo? {
        if let kernel = port.device as? KernelVXLANPort, port.number != nil {
            return TunnelInfo(local: kernel.local.description, vni: Int(kernel.vni), encap: "vxlan", datapath: "kernel",
                              remotes: kernel.remotes.map { RemoteInfo(address: $0.description, maxInnerFrame: kernel.maxInnerFrame) })
        }
        guard let tunnel = port.device as? UDPTunnelPort, port.number != nil else { return nil }
        let handle = Handover(tunnel)
        let (traffic, peers) = bridge.dataPlane.perform { _ in
            Handover((handle.value.trafficByRemote, handle.value.peerStatus()))
        }.value
        return TunnelInfo(local: tunnel.local.description, vni: Int(tunnel.vni), encap: tunnel.encapsulation.name, cipher: tunnel.encapsulation.cipher?.name,
                          remotes: zip(tunnel.remotes.indices, traffic).map { i, t in
                              // Secure remotes: key, endpoint and handshake (peerStatus is empty for VXLAN).
                              let peer = i < peers.count ? peers[i] : nil
                              return RemoteInfo(address: tunnel.remotes[i].description, maxInnerFrame: tunnel.maxInnerFrame[i],
                                                rxPackets: t.rxPackets, rxBytes: t.rxBytes, txPackets: t.txPackets, txBytes: t.txBytes,
                                                publicKey: peer?.publicKey, endpoint: peer?.endpoint,
                                                latestHandshake: peer?.sinceHandshakeSeconds, established: peer?.established)
                          })
    }

    /// Reads the key files of secure tunnels again (SIGHUP): each port's private key and its
    /// pre-shared key, if it has one. A port whose keys changed ends its sessions and starts new
    /// handshakes at once (its peers answer with the keys they hold); one whose keys did not
    /// change keeps its sessions. A file that cannot be used keeps that port's old keys, logged.
    /// The remotes' public keys are not reread: they are part of the port (del-port, add-port).
    public func reloadKeys() {
        for (name, bridge) in bridges {
            for port in bridge.ports {
                guard let tunnel = port.device as? UDPTunnelPort, port.spec.encap == "secure", let path = port.spec.keyFile else { continue }
                do {
                    let peers = (port.spec.peerKeys ?? []).compactMap { SecurePublicKey(base64: $0) }
                    let (privateKey, presharedKey) = try loadSecureKeys(keyFile: path, pskFile: port.spec.pskFile, peers: peers)
                    let handle = Handover((tunnel, privateKey, presharedKey))
                    bridge.dataPlane.perform { _ in
                        let (tunnel, privateKey, presharedKey) = handle.value
                        tunnel.reloadKeys(privateKey: privateKey, presharedKey: presharedKey)
                    }
                    let psk = port.spec.pskFile.map { " and pre-shared key from \($0)" } ?? ""
                    logger.info("bridge \(name) port \(port.spec.name): keys reloaded: private key from \(path) (public key \(privateKey.publicKey))\(psk)")
                } catch {
                    logger.error("bridge \(name) port \(port.spec.name): keeping the old keys: \(error)")
                }
            }
        }
    }

    /// Logs tunnels that dropped frames too big for them, at most once a minute per port, with
    /// the MTU that would make them fit.
    func logOversizeTunnelFrames() {
        for (name, bridge) in bridges {
            for port in bridge.ports {
                guard let tunnel = port.device as? UDPTunnelPort, let n = port.number else { continue }
                let dropped = bridge.dataPlane.perform { $0.switching.counters(n)?.drops(.transmitTooBig) ?? 0 }
                let key = "\(name)/\(port.spec.name)"
                let (seen, at) = oversizeLog[key] ?? (0, .distantPast)
                guard dropped > seen, Date().timeIntervalSince(at) >= 60 else { continue }
                oversizeLog[key] = (dropped, Date())
                let largest = tunnel.maxInnerFrame.min() ?? 0
                logger.warning("bridge \(name): tunnel \(port.spec.name) dropped \(dropped - seen) frame(s) too big for it: the largest inner frame it carries is \(largest) bytes; set the MTU of the hosts on this segment to \(largest - 14) or less (or raise the underlay's MTU)")
            }
        }
    }
}
