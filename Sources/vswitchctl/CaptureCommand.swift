import ArgumentParser
import Foundation
import VSwitchControl

/// Set by SIGINT/SIGTERM so a running capture ends cleanly (stop, flush, exit 0).
nonisolated(unsafe) var captureInterrupted: sig_atomic_t = 0

struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture", abstract: "Stream a port's frames (both directions) as a pcap file.",
        discussion: "Writes a pcap file (nanosecond timestamps, Ethernet) that tcpdump -r and Wireshark read, until COUNT frames or an interrupt. Example: vswitchctl capture br0 tap0 -c 10 -w x.pcap; vswitchctl capture br0 tap0 | tcpdump -r -")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Switch name.") var bridge: String
    @Argument(help: "Port name.") var port: String
    @Option(name: .short, help: ArgumentHelp("Write to FILE (- for standard output, the default).", valueName: "FILE")) var w: String = "-"
    @Option(name: .short, help: ArgumentHelp("Stop after COUNT frames.", valueName: "COUNT")) var c: Int?

    func validate() throws {
        if let c, c < 1 { throw ValidationError("-c must be at least 1") }
    }

    func run() throws {
        let out: FileHandle
        if w == "-" { out = FileHandle.standardOutput } else {
            guard FileManager.default.createFile(atPath: w, contents: nil), let h = FileHandle(forWritingAtPath: w) else {
                throw ValidationError("cannot write \(w)")
            }
            out = h
        }
        signal(SIGINT) { _ in captureInterrupted = 1 }
        signal(SIGTERM) { _ in captureInterrupted = 1 }
        signal(SIGPIPE, SIG_IGN)
        let started = try global.call(.captureStart, PortParams(bridge: bridge, port: port), as: CaptureStarted.self)
        defer { _ = try? global.call(.captureStop, CaptureParams(id: started.id), as: OK.self) }
        try out.write(contentsOf: PcapFormat.fileHeader)
        var written = 0
        while captureInterrupted == 0 {
            let want = c.map { $0 - written } ?? 1000
            let batch = try global.call(.captureRead, CaptureParams(id: started.id, max: min(want, 1000)), as: CaptureFrames.self)
            for f in batch.frames {
                guard let data = Data(base64Encoded: f.data) else { continue }
                try out.write(contentsOf: PcapFormat.record(time: f.time, length: f.length, data: data))
                written += 1
            }
            if let c, written >= c { break }
            if batch.frames.isEmpty { usleep(50_000) }
        }
        try? out.synchronize()
    }
}

/// The classic pcap file format, with nanosecond timestamps (magic a1b23c4d), link type Ethernet.
enum PcapFormat {
    static var fileHeader: Data {
        var d = Data()
        d.append(le: UInt32(0xa1b2_3c4d)); d.append(le: UInt16(2)); d.append(le: UInt16(4))
        d.append(le: Int32(0)); d.append(le: UInt32(0)); d.append(le: UInt32(65_535)); d.append(le: UInt32(1))
        return d
    }

    static func record(time: UInt64, length: Int, data: Data) -> Data {
        var d = Data()
        d.append(le: UInt32(truncatingIfNeeded: time / 1_000_000_000))
        d.append(le: UInt32(truncatingIfNeeded: time % 1_000_000_000))
        d.append(le: UInt32(data.count))
        d.append(le: UInt32(length))
        d.append(data)
        return d
    }
}

extension Data {
    mutating func append<T: FixedWidthInteger>(le value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
