import Foundation
import VSwitchControl
import VSwitchPorts

/// Start-up: the saved state made live again.
extension SwitchService {
    /// Rebuilds the switches and ports of the saved state. A port that cannot be opened again
    /// (its namespace is gone, say) stays configured, marked with the reason, and is logged.
    public func restore() {
        let state = store.load(logger: logger)
        // A state file from before the spanning tree has no bridge addresses: the ones chosen now
        // are saved at once, so the bridge identifiers stay the same from this start on.
        let addressesChosen = state.bridges.contains { $0.settings.stpAddress == nil }
        var specsUpgraded = false
        defer { if addressesChosen || specsUpgraded { try? commit(undo: nil) } }
        for b in state.bridges {
            do {
                let bridge = try makeBridge(b.name, settings: b.settings)
                for saved in b.ports {
                    // A spec saved by an older vswitchd: opened as this one reads it, or kept
                    // configured, refused, with the reason (the factory knows which).
                    let spec: PortSpec
                    do { spec = try factory.upgrade(saved) } catch {
                        logger.error("cannot restore port \(saved.name) on \(b.name): \(error)")
                        bridge.ports.append(ManagedPort(spec: saved, device: nil, number: nil, status: "error: \(error)", created: false))
                        continue
                    }
                    if spec != saved { specsUpgraded = true }
                    do {
                        bridge.ports.append(try openPort(spec, on: bridge))
                    } catch {
                        logger.error("cannot restore port \(spec.name) on \(b.name): \(error)")
                        bridge.ports.append(ManagedPort(spec: spec, device: nil, number: nil, status: "error: \(error)", created: false))
                    }
                }
                for e in b.staticFdb {
                    if (try? addStatic(e, on: bridge)) != nil { bridge.staticFdb.append(e) }
                }
                logger.info("restored bridge \(b.name) with \(bridge.ports.count) port(s)")
            } catch {
                logger.error("cannot restore bridge \(b.name): \(error)")
            }
        }
        // NICs bridged when the daemon last stopped: put each back as it was (after a crash its
        // addresses went with the internal port), then bridge it again.
        for saved in state.bridgedNICs ?? [] {
            restoreNIC(saved, on: bridges[saved.bridge])
            do {
                _ = try bridgeNIC(BridgeNICParams(bridge: saved.bridge, nic: saved.nic, netns: saved.netns))
            } catch {
                logger.error("cannot bridge \(saved.nic) to \(saved.bridge) again: \(error)")
            }
        }
    }
}
