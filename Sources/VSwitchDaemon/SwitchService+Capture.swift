import Foundation
import VSwitchControl
import VSwitchCore
import VSwitchDataPlane

/// `vswitchctl capture`: a capture is a ring the data plane copies one port's frames into (both
/// directions), drained by the client's `capture-read` calls. It exists only while someone reads
/// it: `capture-stop`, the port or switch going away, or 10 s without a read end it and free it.
extension SwitchService {
    final class Capture {
        let id: Int
        let bridge: String
        let port: String
        let number: PortNumber
        var lastRead = Date()
        init(id: Int, bridge: String, port: String, number: PortNumber) {
            self.id = id; self.bridge = bridge; self.port = port; self.number = number
        }
    }

    static let captureIdleTimeout: TimeInterval = 10

    func captureStart(_ p: PortParams) throws -> CaptureStarted {
        let bridge = try lookupBridge(p.bridge)
        guard let name = p.port, let port = bridge.ports.first(where: { $0.spec.name == name }) else {
            throw JSONRPC.ErrorObject(code: .failed, message: "no port \(p.port ?? "") on bridge \(p.bridge)")
        }
        guard let number = port.number else { throw JSONRPC.ErrorObject(code: .failed, message: "port \(name) is not attached (\(port.status))") }
        if captures.values.contains(where: { $0.bridge == p.bridge && $0.port == name }) {
            throw JSONRPC.ErrorObject(code: .failed, message: "port \(name) is already being captured")
        }
        nextCaptureID += 1
        let capture = Capture(id: nextCaptureID, bridge: p.bridge, port: name, number: number)
        let ring = Handover(CaptureRing())
        bridge.dataPlane.perform { $0.switching.setCapture(ring.value, for: number) }
        captures[capture.id] = capture
        scheduleIdleCheck(capture.id)
        return CaptureStarted(id: capture.id)
    }

    func captureRead(_ p: CaptureParams) throws -> CaptureFrames {
        guard let capture = captures[p.id], let bridge = bridges[capture.bridge] else {
            throw JSONRPC.ErrorObject(code: .failed, message: "no capture \(p.id) (it ended: stopped, idle, or its port went away)")
        }
        capture.lastRead = Date()
        let max = min(Swift.max(p.max ?? 1000, 1), 10_000)
        let number = capture.number
        let drained = bridge.dataPlane.perform { dp -> Handover<([(UInt64, Int, Data)], UInt64)>? in
            guard let ring = dp.switching.capture(number) else { return nil }
            var out: [(UInt64, Int, Data)] = []
            ring.drain(max: max) { time, length, bytes in out.append((time, length, Data(bytes))) }
            return Handover((out, ring.dropped))
        }
        guard let (frames, dropped) = drained?.value else {
            captures[p.id] = nil
            throw JSONRPC.ErrorObject(code: .failed, message: "capture \(p.id) ended: its port went away")
        }
        // The data plane stamps with CLOCK_MONOTONIC; pcap wants wall-clock time.
        var mono = timespec(), real = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        clock_gettime(CLOCK_REALTIME, &real)
        let offset = Int64(real.tv_sec - mono.tv_sec) * 1_000_000_000 + Int64(real.tv_nsec - mono.tv_nsec)
        return CaptureFrames(frames: frames.map { time, length, data in
            CapturedFrame(time: UInt64(Int64(time) + offset), length: length, data: data.base64EncodedString())
        }, dropped: dropped)
    }

    func captureStop(_ p: CaptureParams) throws -> OK {
        guard let capture = captures.removeValue(forKey: p.id) else { return OK() }
        endCapture(capture)
        return OK()
    }

    func endCapture(_ capture: Capture) {
        guard let bridge = bridges[capture.bridge] else { return }
        let number = capture.number
        bridge.dataPlane.perform { dp in
            if dp.switching.capture(number) != nil { dp.switching.setCapture(nil, for: number) }
        }
    }

    /// Ends captures nobody has read for a while (a client that died without capture-stop).
    private func scheduleIdleCheck(_ id: Int) {
        queue?.asyncAfter(deadline: .now() + Self.captureIdleTimeout) { [weak self] in
            guard let self, let capture = self.captures[id] else { return }
            if Date().timeIntervalSince(capture.lastRead) >= Self.captureIdleTimeout {
                self.captures[id] = nil
                self.endCapture(capture)
            } else {
                self.scheduleIdleCheck(id)
            }
        }
    }
}
