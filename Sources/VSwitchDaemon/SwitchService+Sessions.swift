import VSwitchDataPlane
import VSwitchPorts

/// Secure sessions after a VM generation change (`VMGenerationMonitor`).
extension SwitchService {
    /// Ends every secure tunnel's sessions and starts new handshakes (on the control queue).
    public func forgetSecureSessions(reason: String) {
        var count = 0
        for (_, bridge) in bridges {
            for port in bridge.ports {
                guard let tunnel = port.device as? UDPTunnelPort, port.number != nil, tunnel.encapsulation.cipher != nil else { continue }
                let handle = Handover(tunnel)
                bridge.dataPlane.perform { _ in handle.value.forgetSessions() }
                count += 1
            }
        }
        logger.warning("\(reason): ended the sessions of \(count) secure tunnel port(s); new handshakes started")
    }
}
