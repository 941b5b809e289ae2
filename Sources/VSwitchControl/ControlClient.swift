import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The default control socket path, overridden by `--socket` or `VSWITCH_SOCKET`.
public enum ControlSocket {
    public static let defaultPath = "/run/vswitch/vswitchd.sock"
    public static func path(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        flag ?? environment["VSWITCH_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? defaultPath
    }
}

public enum ControlClientError: Error, CustomStringConvertible, Equatable {
    /// No daemon answers at the socket path.
    case unreachable(path: String, reason: String)
    case timedOut(path: String, seconds: Double)
    /// The daemon answered with a JSON-RPC error.
    case remote(code: Int, message: String)
    /// The daemon's answer was not a valid response.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason):
            "cannot reach vswitchd at \(path): \(reason) (is vswitchd running? set --socket or VSWITCH_SOCKET)"
        case .timedOut(let path, let seconds): "no answer from vswitchd at \(path) within \(seconds) s"
        case .remote(_, let message): message
        case .protocolError(let what): "bad response from vswitchd: \(what)"
        }
    }
}

/// A blocking client for one daemon: connects per call, sends one request line, reads one line.
public struct ControlClient: Sendable {
    public let path: String
    public let timeout: Double

    public init(path: String, timeout: Double = 30) {
        self.path = path
        self.timeout = timeout
    }

    public func call<P: Encodable, R: Decodable>(_ method: ControlMethod, _ params: P, as: R.Type = R.self) throws -> R {
        try call(method.rawValue, params, as: R.self)
    }

    public func call<P: Encodable, R: Decodable>(_ method: String, _ params: P, as: R.Type = R.self) throws -> R {
        let request = try JSONRPC.encoder().encode(JSONRPC.Request(id: .number(1), method: method, params: params))
        let line = try exchange(request)
        let decoder = JSONRPC.decoder()
        let head: JSONRPC.RawResponse
        do { head = try decoder.decode(JSONRPC.RawResponse.self, from: line) } catch {
            throw ControlClientError.protocolError("not JSON-RPC: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
        if let e = head.error { throw ControlClientError.remote(code: e.code, message: e.message) }
        do { return try decoder.decode(JSONRPC.ResultOf<R>.self, from: line).result } catch {
            throw ControlClientError.protocolError("unexpected result: \(error)")
        }
    }

    /// Sends raw bytes (which should end with a newline) and returns the first response line.
    public func exchange(_ request: Data) throws -> Data {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlClientError.unreachable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw ControlClientError.unreachable(path: path, reason: "socket path too long")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw ControlClientError.unreachable(path: path, reason: String(cString: strerror(errno))) }

        var out = request
        if out.last != UInt8(ascii: "\n") { out.append(UInt8(ascii: "\n")) }
        try out.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno == EAGAIN { throw ControlClientError.timedOut(path: path, seconds: timeout) }
                    throw ControlClientError.unreachable(path: path, reason: String(cString: strerror(errno)))
                }
                sent += n
            }
        }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw ControlClientError.timedOut(path: path, seconds: timeout) }
                throw ControlClientError.protocolError(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            if let nl = chunk[0..<n].firstIndex(of: UInt8(ascii: "\n")) {
                response.append(contentsOf: chunk[0..<nl])
                return response
            }
            response.append(contentsOf: chunk[0..<n])
        }
        guard !response.isEmpty else { throw ControlClientError.protocolError("connection closed without a response") }
        return response
    }
}
