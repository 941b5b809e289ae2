import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchPorts
import VSwitchTunnel

/// UDP tunnel ports: opening them from a port spec, what `show` says of them, key reloads.
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
            if spec.cipher != nil { throw fail("--cipher applies to --encap secure only") }
            encapsulation = .vxlan
        case "secure":
            guard let path = spec.keyFile else { throw fail("--encap secure needs --key-file FILE (make one with vswitchctl genkey -w FILE)") }
            let cipher: SecureCipher
            if let name = spec.cipher {
                guard let named = SecureCipher(name: name) else {
                    throw fail("invalid cipher \(name) (\(SecureCipher.allCases.map(\.name).joined(separator: " or ")))")
                }
                cipher = named
            } else {
                cipher = .default
            }
            do { encapsulation = .secure(try SecureKeyFile.load(path: path), cipher) } catch { throw fail("\(error)") }
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

    func tunnelInfo(_ port: ManagedPort, on bridge: ManagedBridge) -> TunnelInfo? {
        if let kernel = port.device as? KernelVXLANPort, port.number != nil {
            return TunnelInfo(local: kernel.local.description, vni: Int(kernel.vni), encap: "vxlan", datapath: "kernel",
                              remotes: kernel.remotes.map { RemoteInfo(address: $0.description, maxInnerFrame: kernel.maxInnerFrame) })
        }
        guard let tunnel = port.device as? UDPTunnelPort, port.number != nil else { return nil }
        let handle = Handover(tunnel)
        let traffic = bridge.dataPlane.perform { _ in Handover(handle.value.trafficByRemote) }.value
        return TunnelInfo(local: tunnel.local.description, vni: Int(tunnel.vni), encap: tunnel.encapsulation.name, cipher: tunnel.encapsulation.cipher?.name,
                          remotes: zip(tunnel.remotes.indices, traffic).map { i, t in
                              RemoteInfo(address: tunnel.remotes[i].description, maxInnerFrame: tunnel.maxInnerFrame[i],
                                         rxPackets: t.rxPackets, rxBytes: t.rxBytes, txPackets: t.txPackets, txBytes: t.txBytes)
                          })
    }

    /// Reads the key files of secure tunnels again (SIGHUP): a file with the new key first and the
    /// old one second rolls keys over without a gap. A file that cannot be read keeps the old keys.
    public func reloadKeys() {
        for (name, bridge) in bridges {
            for port in bridge.ports {
                guard let tunnel = port.device as? UDPTunnelPort, let path = port.spec.keyFile else { continue }
                do {
                    let ring = try SecureKeyFile.load(path: path)
                    let handle = Handover(tunnel)
                    bridge.dataPlane.perform { _ in handle.value.rekey(ring) }
                    logger.info("bridge \(name) port \(port.spec.name): keys reloaded from \(path) (\(ring.keys.count) key(s))")
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
