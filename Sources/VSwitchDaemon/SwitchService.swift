// VSwitchDaemon: vswitchd's services: the switch registry behind the control socket, the state
// store, and the control server.
//
// Threading rule: `SwitchService` is confined to one serial dispatch queue (the control queue).
// Requests from every connection run there one at a time, so a request sees the registry as the
// previous one left it, and may block (netlink, TAP creation, fsync, a data-plane round trip)
// without another request interleaving. The data planes are reached only through
// `DataPlane.perform`, which runs a closure on the data-plane thread between batches.
//
// Every change follows one shape: validate, do it (undoing the steps done so far if a later one
// fails), persist, reply. A change that cannot be persisted is undone and reported.
//
// One job per file: this one holds the registry, persisting (`commit`) and the shared checks;
// `+Restore` (start-up from the state file), `+Bridges`, `+Ports` (ports are opened by the
// injected `PortFactory`, the only code that knows port kinds), `+Settings` (`set`, `set-port`,
// and the one mapping of `PortSettings` to core values), `+FDB`, `+Show` (`show`, `stats`),
// `+Tunnels` (what ports with tunnel capabilities need), `+SpanningTree`, `+BridgeNIC`,
// `+Capture`, `+Metrics`, `+Dispatch` (JSON-RPC to methods).
import Foundation
import Logging
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane
import VSwitchPorts
import VSwitchWire

public final class SwitchService: @unchecked Sendable {
    final class ManagedPort {
        var spec: PortSpec
        var device: (any DevicePort)?
        var number: PortNumber?
        var status: String
        var created: Bool
        init(spec: PortSpec, device: (any DevicePort)?, number: PortNumber?, status: String, created: Bool) {
            self.spec = spec; self.device = device; self.number = number; self.status = status; self.created = created
        }
    }

    final class ManagedBridge {
        let name: String
        var settings: BridgeSettings
        let dataPlane: DataPlane
        var ports: [ManagedPort] = []
        var staticFdb: [DaemonState.StaticEntry] = []
        init(name: String, settings: BridgeSettings, dataPlane: DataPlane) {
            self.name = name; self.settings = settings; self.dataPlane = dataPlane
        }
    }

    let store: StateStore
    let logger: Logger
    var bridges: [String: ManagedBridge] = [:]
    var captures: [Int: Capture] = [:]
    /// NICs joined with `bridge-nic` (SwitchService+BridgeNIC).
    var bridgedNICs: [BridgedNIC] = []
    /// Tunnel ports' oversize drops last logged, and when (rate limit).
    var oversizeLog: [String: (UInt64, Date)] = [:]
    var nextCaptureID = 0
    /// The control queue this service is confined to (for timers); set by the daemon.
    public var queue: DispatchQueue?

    /// Opens ports: the only code that knows their kinds.
    let factory: any PortFactory

    public init(store: StateStore, logger: Logger, factory: any PortFactory = SystemPortFactory()) {
        self.store = store
        self.logger = logger
        self.factory = factory
    }

    /// Stops every data plane and closes every port (removing the TAPs vswitchd created).
    public func shutdown() {
        // Bridged NICs get their addresses and routes back; the state keeps them, so the next
        // start bridges them again.
        for saved in bridgedNICs.reversed() { restoreNIC(saved, on: bridges[saved.bridge]) }
        for name in bridges.keys.sorted() { tearDown(bridges[name]!) }
        bridges.removeAll()
    }

    /// Logs MACs flagged as moving back and forth, once each (every 2 s, on the control queue).
    public func startMoveLogging() {
        queue?.asyncAfter(deadline: .now() + 2) { [weak self] in
            guard let self else { return }
            for name in self.bridges.keys.sorted() {
                let events = self.bridges[name]!.dataPlane.perform { dp -> Handover<[(MoveEvent, String, String)]> in
                    let sw = dp.switching
                    return Handover(sw.table.takeMoveEvents().map { ($0, sw.port($0.from)?.name ?? "?", sw.port($0.to)?.name ?? "?") })
                }.value
                for (e, from, to) in events {
                    self.logger.warning("bridge \(name): MAC \(MACAddress(rawValue: e.mac)) vlan \(e.vlan) is moving between ports \(from) and \(to) (\(e.moves) moves within \(MoveTracker.window) s): a loop, or two hosts with one MAC?")
                }
            }
            self.logOversizeTunnelFrames()
            self.logSpanningTreeEvents()
            self.startMoveLogging()
        }
    }

    /// Persists the registry; if that fails, runs `undo` and reports the failure.
    func commit(undo: (() -> Void)?) throws {
        do { try store.save(snapshot()) } catch {
            undo?()
            logger.error("cannot save state: \(error)")
            throw fail("cannot save state: \(error)")
        }
    }

    func snapshot() -> DaemonState {
        var s = DaemonState()
        s.bridges = bridges.keys.sorted().map { name in
            let b = bridges[name]!
            return .init(name: name, settings: b.settings, ports: b.ports.filter { !self.isBridgedNICPort($0.spec, of: name) }.map(\.spec),
                         staticFdb: b.staticFdb)
        }
        s.bridgedNICs = bridgedNICs.isEmpty ? nil : bridgedNICs
        return s
    }

    /// Ports that `bridge-nic` made are not saved as ports: the bridged-NIC record re-creates them.
    func isBridgedNICPort(_ spec: PortSpec, of bridge: String) -> Bool {
        bridgedNICs.contains { $0.bridge == bridge && $0.netns == spec.netns && ($0.nic == spec.name || ($0.createdInternalPort && $0.internalPort == spec.name)) }
    }

    func lookupBridge(_ name: String) throws -> ManagedBridge { try lookup(name) }

    func lookup(_ name: String) throws -> ManagedBridge {
        guard let b = bridges[name] else { throw noBridge(name) }
        return b
    }

    func validateName(_ name: String, what: String, maxLength: Int = 64) throws {
        let ok = !name.isEmpty && name.utf8.count <= maxLength && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { $0.isASCII && $0.value > 32 && $0 != "/" && $0 != ":" }
        guard ok else { throw fail("invalid \(what) name \"\(name)\" (1-\(maxLength) printable characters, no '/', ':' or spaces)") }
    }

    func fail(_ message: String) -> JSONRPC.ErrorObject { .init(code: .failed, message: message) }
    func invalidParams(_ message: String) -> JSONRPC.ErrorObject { .init(code: .invalidParams, message: message) }
    func noBridge(_ name: String) -> JSONRPC.ErrorObject { fail("no bridge named \(name)") }
}
