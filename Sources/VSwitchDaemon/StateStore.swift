import Foundation
import Logging
import VSwitchControl

/// What vswitchd remembers across restarts: every switch, its settings, ports and static MACs.
public struct DaemonState: Codable, Equatable, Sendable {
    public struct Bridge: Codable, Equatable, Sendable {
        public var name: String
        public var settings: BridgeSettings
        public var ports: [PortSpec]
        public var staticFdb: [StaticEntry]
    }
    public struct StaticEntry: Codable, Equatable, Sendable {
        public var mac: String
        public var vlan: Int
        public var port: String
    }
    public var version = 1
    public var bridges: [Bridge] = []
    /// NICs joined to switches with `bridge-nic`, with what they had before (restored on
    /// `unbridge-nic`, on shutdown, and after a crash when the daemon starts again).
    public var bridgedNICs: [BridgedNIC]? = nil
    public init() {}
}

/// Keeps `state.json` in the state directory. Every save is atomic (temp file, fsync, rename,
/// fsync of the directory), so a crash leaves either the old state or the new one. A file that
/// cannot be read is set aside as `state.json.corrupt-<time>`, never overwritten.
public struct StateStore: Sendable {
    public let directory: String
    public var path: String { directory + "/state.json" }

    public init(directory: String) { self.directory = directory }

    /// Loads the state; a missing file is an empty state; a corrupt one is renamed and logged.
    public func load(logger: Logger) -> DaemonState {
        guard let data = FileManager.default.contents(atPath: path) else { return DaemonState() }
        do {
            let state = try JSONRPC.decoder().decode(DaemonState.self, from: data)
            guard state.version == 1 else { throw StateStoreError("unknown state version \(state.version)") }
            return state
        } catch {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let aside = "\(path).corrupt-\(stamp)"
            let moved = rename(path, aside) == 0
            logger.error("state file \(path) is corrupt (\(Self.describe(error))); \(moved ? "moved it to \(aside)" : "could not move it aside") and starting with no switches")
            return DaemonState()
        }
    }

    public func save(_ state: DaemonState) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = try JSONRPC.encoder(pretty: true).encode(state) + Data("\n".utf8)
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateStoreError("cannot write \(temp): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced else {
            unlink(temp)
            throw StateStoreError("cannot write \(temp): \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else { throw StateStoreError("cannot replace \(path): \(String(cString: strerror(errno)))") }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return "not valid JSON: \(c.debugDescription)"
        case DecodingError.keyNotFound(let k, _): return "missing field \(k.stringValue)"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(error)"
        }
    }
}

public struct StateStoreError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
