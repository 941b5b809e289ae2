import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchPorts

/// What the daemon does with ports that have the tunnel capabilities of VSwitchPorts (whatever
/// their kind): what `show` says of a tunnel, key reloads on SIGHUP, sessions ended after a VM
/// generation change, and the log line for frames too big for a path.
extension SwitchService {
    func tunnelInfo(_ port: ManagedPort, on bridge: ManagedBridge) -> TunnelInfo? {
        guard let tunnel = port.device as? any TunnelPort, port.number != nil else { return nil }
        let handle = Handover(tunnel)
        let s = bridge.dataPlane.perform { _ in Handover(handle.value.tunnelStatus()) }.value
        return TunnelInfo(local: s.local, vni: s.vni, encap: s.encapsulation, cipher: s.cipher, datapath: s.datapath,
                          remotes: s.remotes.map { r in
                              RemoteInfo(address: r.address, maxInnerFrame: r.maxInnerFrame,
                                         rxPackets: r.traffic?.rxPackets, rxBytes: r.traffic?.rxBytes,
                                         txPackets: r.traffic?.txPackets, txBytes: r.traffic?.txBytes,
                                         publicKey: r.peer?.publicKey, endpoint: r.peer?.endpoint,
                                         latestHandshake: r.peer?.sinceHandshakeSeconds, established: r.peer?.established)
                          })
    }

    /// Reads the key files of ports with keys again (SIGHUP): each port's private key and its
    /// pre-shared key, if it has one. A port whose keys changed ends its sessions and starts new
    /// handshakes at once (its peers answer with the keys they hold); one whose keys did not
    /// change keeps its sessions. A file that cannot be used keeps that port's old keys, logged.
    /// The remotes' public keys are not reread: they are part of the port (del-port, add-port).
    public func reloadKeys() {
        for (name, bridge) in bridges {
            for port in bridge.ports {
                guard let secure = port.device as? any SecureSessionPort, secure.hasSecureSessions else { continue }
                do {
                    guard let keys = try factory.reloadKeys(port.spec) else { continue }
                    let handle = Handover((secure, keys.privateKey, keys.presharedKey))
                    bridge.dataPlane.perform { _ in
                        let (port, privateKey, presharedKey) = handle.value
                        port.reloadKeys(privateKey: privateKey, presharedKey: presharedKey)
                    }
                    logger.info("bridge \(name) port \(port.spec.name): keys reloaded: \(keys.summary)")
                } catch {
                    logger.error("bridge \(name) port \(port.spec.name): keeping the old keys: \(error)")
                }
            }
        }
    }

    /// Ends every secure port's sessions and starts new handshakes (`VMGenerationMonitor`).
    public func forgetSecureSessions(reason: String) {
        var count = 0
        for (_, bridge) in bridges {
            for port in bridge.ports {
                guard let secure = port.device as? any SecureSessionPort, port.number != nil, secure.hasSecureSessions else { continue }
                let handle = Handover(secure)
                bridge.dataPlane.perform { _ in handle.value.forgetSessions() }
                count += 1
            }
        }
        logger.warning("\(reason): ended the sessions of \(count) secure tunnel port(s); new handshakes started")
    }

    /// Logs ports that dropped frames too big for their path, at most once a minute per port,
    /// with the MTU that would make them fit.
    func logOversizeTunnelFrames() {
        for (name, bridge) in bridges {
            for port in bridge.ports {
                guard let limited = port.device as? any FrameSizeLimitedPort, let n = port.number else { continue }
                let dropped = bridge.dataPlane.perform { $0.switching.counters(n)?.drops(.transmitTooBig) ?? 0 }
                let key = "\(name)/\(port.spec.name)"
                let (seen, at) = oversizeLog[key] ?? (0, .distantPast)
                guard dropped > seen, Date().timeIntervalSince(at) >= 60 else { continue }
                oversizeLog[key] = (dropped, Date())
                let largest = limited.largestFrame
                logger.warning("bridge \(name): tunnel \(port.spec.name) dropped \(dropped - seen) frame(s) too big for it: the largest inner frame it carries is \(largest) bytes; set the MTU of the hosts on this segment to \(largest - 14) or less (or raise the underlay's MTU)")
            }
        }
    }
}
