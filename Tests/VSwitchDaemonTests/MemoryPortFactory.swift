import VSwitchControl
import VSwitchCore
import VSwitchDaemon
import VSwitchPorts
import VSwitchTesting

/// A device port over a `MemoryPort`: what the daemon attaches in unit tests. Impairable, so
/// `set-port delay=...` reaches it; records whether it was closed.
final class MemoryDevicePort: DevicePort, ImpairablePort {
    let memory: MemoryPort
    var name: String { memory.name }
    var readinessDescriptor: Int32 { -1 }
    let created = true
    private(set) var closed = false
    var impairment = Impairment()
    var isTimed: Bool { false }
    var nextDeadline: UInt64? { nil }

    init(name: String) { memory = MemoryPort(name: name) }

    func receive(into batch: PacketBatch, counters: PortCounters) { memory.receive(into: batch, counters: counters) }
    func transmit(_ batch: PacketBatch, indices: UnsafePointer<UInt16>, count: Int, counters: PortCounters) {
        memory.transmit(batch, indices: indices, count: count, counters: counters)
    }
    func service(now: UInt64, counters: PortCounters) {}
    func close() { closed = true }
}

/// Checks specs as vswitchd does (`SystemPortFactory`'s rules) and opens in-memory ports instead
/// of devices. `failing` names ports whose open fails, as a device that cannot be made.
final class MemoryPortFactory: PortFactory {
    let system = SystemPortFactory()
    var opened: [MemoryDevicePort] = []
    var failing: Set<String> = []

    var kinds: [String] { system.kinds }
    func validate(_ spec: PortSpec) throws -> PortSpec { try system.validate(spec) }
    func upgrade(_ saved: PortSpec) throws -> PortSpec { try system.upgrade(saved) }
    func open(_ spec: PortSpec) throws -> any DevicePort {
        if failing.contains(spec.name) { throw PortError("cannot open TAP \(spec.name): no such device (test)") }
        let port = MemoryDevicePort(name: spec.name)
        opened.append(port)
        return port
    }
    func reloadKeys(_ spec: PortSpec) throws -> SecureKeys? { nil }

    /// The newest port opened under `name`.
    func port(_ name: String) -> MemoryDevicePort? { opened.last { $0.name == name } }
}
