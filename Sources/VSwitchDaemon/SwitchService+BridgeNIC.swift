import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchNetlink
import VSwitchPorts
import VSwitchWire

/// A NIC joined to a switch with `bridge-nic`, and what it had before (SPEC section 6).
public struct BridgedNIC: Codable, Equatable, Sendable {
    public var bridge: String
    public var nic: String
    public var netns: String?
    /// The internal port standing for the switch on the host (named like the switch), and
    /// whether `bridge-nic` created it (then `unbridge-nic` removes it).
    public var internalPort: String
    public var createdInternalPort: Bool
    /// What NIC had: its global addresses and the routes through it (kernel-made ones excluded).
    public var addresses: [AddressInfo]
    public var routes: [RouteInfo]
    /// How NIC's own stack was stopped from receiving (what to undo).
    public var ingressDrop: IngressDropToken?
}

/// `bridge-nic BR NIC` does what OpenVPN's ethernet-bridging recipe does with brctl and its
/// bridge-start script: NIC becomes a pcap port of BR; the internal port BR stands for the host
/// on the switch (with NIC's MAC, as the Linux br0 takes its port's, so neighbours' caches stay
/// valid); NIC's IPv4/IPv6 addresses and routes move to BR; NIC's own stack stops receiving
/// (a tc ingress drop, as a bridge port's frames belong to the bridge) while libpcap still sees
/// every frame. Each step is undone, in reverse order, if a later one fails; `unbridge-nic` and
/// shutdown put everything back as it was.
extension SwitchService {
    /// Test hook: fail after this many steps (VSWITCH_BRIDGE_NIC_FAIL_AFTER), to prove rollback.
    static var bridgeFailAfter: Int? { ProcessInfo.processInfo.environment["VSWITCH_BRIDGE_NIC_FAIL_AFTER"].flatMap(Int.init) }

    func bridgeNIC(_ p: BridgeNICParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        let nic = p.nic, ns = p.netns
        let internalName = p.bridge
        guard internalName.utf8.count <= 15 else {
            throw fail("bridge-nic names the internal port after the switch: \(p.bridge) is too long for an interface name (15 characters)")
        }
        if let b = bridgedNICs.first(where: { $0.nic == nic && $0.netns == ns }) {
            throw fail("\(nic) is already bridged to \(b.bridge)")
        }
        if nic == internalName { throw fail("\(nic) is the internal port of \(p.bridge): it belongs to the switch") }
        for b in bridges.values {
            if let port = b.ports.first(where: { $0.spec.name == nic && $0.spec.netns == ns }) {
                throw fail("\(nic) is already port \(port.spec.name) (\(port.spec.type)) of bridge \(b.name)")
            }
        }
        let existingInternal = bridge.ports.first { $0.spec.name == internalName }
        if let e = existingInternal, e.spec.type != "internal" || e.spec.netns != ns {
            throw fail("port \(internalName) of \(p.bridge) is not an internal port\(ns.map { " in namespace \($0)" } ?? "") (bridge-nic needs one)")
        }
        let nl: NetlinkSocket
        let link: LinkInfo
        do {
            nl = try NetlinkSocket(namespace: ns)
            guard let l = try nl.link(named: nic) else { throw fail("no interface \(nic)\(ns.map { " in namespace \($0)" } ?? "")") }
            link = l
        } catch let e as JSONRPC.ErrorObject { throw e } catch { throw fail("cannot read \(nic): \(error)") }
        guard link.mac.count == 6 else { throw fail("\(nic) is not an Ethernet interface") }

        // What moves: global addresses (link-local ones belong to the NIC) and the routes
        // through NIC that the kernel did not derive from an address itself.
        var saved: BridgedNIC
        do {
            let addresses = try nl.addresses(of: nic).filter { $0.scope != Self.scopeLink }
            let routes = try nl.routes().filter { $0.device == nic && !$0.isKernelRoute }
            saved = BridgedNIC(bridge: p.bridge, nic: nic, netns: ns, internalPort: internalName, createdInternalPort: existingInternal == nil,
                               addresses: addresses, routes: routes, ingressDrop: nil)
        } catch { throw fail("cannot read the addresses and routes of \(nic): \(error)") }

        var steps = Rollback(failAfter: Self.bridgeFailAfter)
        do {
            if existingInternal == nil {
                let spec = PortSpec(name: internalName, type: "internal", netns: ns, mtu: link.mtu, mac: MACAddress(octets: link.mac)?.description)
                let port = try openPort(spec, on: bridge)
                bridge.ports.append(port)
                try steps.did("add internal port \(internalName)") { bridge.ports.removeAll { $0 === port }; self.closePort(port, on: bridge) }
            }
            let pcap = try openPort(PortSpec(name: nic, type: "pcap", netns: ns), on: bridge)
            bridge.ports.append(pcap)
            try steps.did("attach \(nic)") { bridge.ports.removeAll { $0 === pcap }; self.closePort(pcap, on: bridge) }
            let token = try nl.setIngressDrop(on: nic)
            saved.ingressDrop = token
            try steps.did("stop \(nic)'s own stack receiving") { try? nl.clearIngressDrop(on: nic, token) }
            // Removing NIC's addresses takes routes with them (all IPv4 ones with the last address);
            // undone after the addresses are back, this puts back whatever is missing.
            let routesBefore = saved.routes
            try steps.did("take the routes off \(nic)") { _ = Self.addMissingRoutes(routesBefore, to: nic, nl) }
            for a in saved.addresses.reversed() {
                try nl.deleteAddress(a.cidr, from: nic)
                try steps.did("remove \(a.cidr) from \(nic)") { try? nl.addAddress(a, to: nic) }
            }
            // Routes the address removals did not take with them (IPv6 keeps its gateway routes).
            let left = try nl.routes().filter { $0.device == nic }
            for r in saved.routes where left.contains(where: { Self.sameRoute($0, r) }) {
                try nl.deleteRoute(destination: r.destination == "default" && r.family == .ipv6 ? "::/0" : r.destination, gateway: r.gateway, device: nic)
            }
            for a in saved.addresses {
                // Already checked for duplicates on the NIC: no second DAD on the internal port.
                try nl.addAddress(a.cidr, to: internalName, skipDAD: true, flags: a.flags)
                try steps.did("add \(a.cidr) to \(internalName)") { try? nl.deleteAddress(a.cidr, from: internalName) }
            }
            for r in saved.routes {
                try nl.addRoute(r, device: internalName)
                try steps.did("add route \(r.destination) to \(internalName)") {
                    try? nl.deleteRoute(destination: r.destination == "default" && r.family == .ipv6 ? "::/0" : r.destination, gateway: r.gateway,
                                        device: internalName)
                }
            }
            bridgedNICs.append(saved)
            try steps.did("remember \(nic)") { self.bridgedNICs.removeAll { $0 == saved } }
            try commit(undo: nil)
        } catch {
            let undone = steps.rollBack()
            logger.error("bridge-nic \(p.bridge) \(nic) failed, \(undone) step(s) undone: \(error)")
            if let e = error as? JSONRPC.ErrorObject { throw e }
            throw fail("cannot bridge \(nic) to \(p.bridge): \(error) (nothing was changed)")
        }
        logger.info("bridged \(nic) to \(p.bridge): \(saved.addresses.count) address(es) and \(saved.routes.count) route(s) moved to \(internalName)")
        return OK()
    }

    func unbridgeNIC(_ p: BridgeNICParams) throws -> OK {
        let bridge = try lookup(p.bridge)
        guard let saved = bridgedNICs.first(where: { $0.bridge == p.bridge && $0.nic == p.nic && $0.netns == p.netns }) else {
            throw fail("\(p.nic) is not bridged to \(p.bridge)")
        }
        let problems = restoreNIC(saved, on: bridge)
        bridgedNICs.removeAll { $0 == saved }
        try commit(undo: nil)
        if !problems.isEmpty { throw fail("unbridged \(p.nic), but: \(problems.joined(separator: "; "))") }
        logger.info("unbridged \(p.nic) from \(p.bridge)")
        return OK()
    }

    /// Puts a bridged NIC back as it was; returns what could not be restored. Safe to call when
    /// part of it is already restored (after a crash): what is present is left alone.
    @discardableResult
    func restoreNIC(_ saved: BridgedNIC, on bridge: ManagedBridge?) -> [String] {
        var problems: [String] = []
        if let bridge {
            for name in [saved.nic] + (saved.createdInternalPort ? [saved.internalPort] : []) {
                if let port = bridge.ports.first(where: { $0.spec.name == name }) {
                    closePort(port, on: bridge)
                    bridge.ports.removeAll { $0 === port }
                }
            }
        }
        do {
            let nl = try NetlinkSocket(namespace: saved.netns)
            if !saved.createdInternalPort {
                for r in saved.routes {
                    try? nl.deleteRoute(destination: r.destination == "default" && r.family == .ipv6 ? "::/0" : r.destination, gateway: r.gateway,
                                        device: saved.internalPort)
                }
                for a in saved.addresses { try? nl.deleteAddress(a.cidr, from: saved.internalPort) }
            }
            try? nl.clearIngressDrop(on: saved.nic, saved.ingressDrop)
            let present = Set(try nl.addresses(of: saved.nic).map(\.cidr))
            let missing = saved.addresses.filter { !present.contains($0.cidr) }
            do { try nl.addAddresses(missing, to: saved.nic) } catch { problems.append("addresses: \(error)") }
            problems += Self.addMissingRoutes(saved.routes, to: saved.nic, nl)
        } catch { problems.append("\(error)") }
        for p in problems { logger.error("restoring \(saved.nic): \(p)") }
        return problems
    }

    static let scopeLink: UInt8 = 253

    static func sameRoute(_ a: RouteInfo, _ b: RouteInfo) -> Bool {
        a.family == b.family && a.destination == b.destination && a.gateway == b.gateway && a.metric == b.metric
    }

    /// Adds the routes of `routes` that `device` lacks; returns what failed.
    static func addMissingRoutes(_ routes: [RouteInfo], to device: String, _ nl: NetlinkSocket) -> [String] {
        let present = (try? nl.routes().filter { $0.device == device }) ?? []
        var problems: [String] = []
        for r in routes where !present.contains(where: { sameRoute($0, r) }) {
            do { try nl.addRoute(r, device: device) } catch { problems.append("route \(r): \(error)") }
        }
        return problems
    }
}

/// An undo log: each completed step registers how to undo it; `did` throws the injected
/// failure (a test hook) after the configured number of steps.
struct Rollback {
    let failAfter: Int?
    private var undo: [(String, () throws -> Void)] = []
    init(failAfter: Int?) { self.failAfter = failAfter }

    mutating func did(_ what: String, undo action: @escaping () throws -> Void) throws {
        undo.append((what, action))
        if let n = failAfter, undo.count >= n { throw RollbackInjected(description: "injected failure after \(n) step(s) (\(what))") }
    }

    /// Undoes every step, newest first; returns how many.
    mutating func rollBack() -> Int {
        for (_, action) in undo.reversed() { try? action() }
        defer { undo.removeAll() }
        return undo.count
    }
}

struct RollbackInjected: Error, CustomStringConvertible { let description: String }
