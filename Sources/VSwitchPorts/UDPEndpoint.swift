#if canImport(Glibc)
import Glibc
#endif
import CVSwitchLinux
import VSwitchNetlink

/// A UDP endpoint, `ADDR:PORT` or `[IPv6]:PORT`, with a host name allowed for ADDR (resolved once,
/// when the port is added, inside the port's namespace).
public struct UDPEndpoint: Sendable, CustomStringConvertible {
    public var address: sockaddr_storage
    public var length: socklen_t
    /// What the user wrote.
    public let text: String

    public var isIPv6: Bool { Int32(address.ss_family) == AF_INET6 }

    /// The address and port as numbers: "198.18.0.1:4789", "[2001:2::1]:4789".
    public var description: String {
        guard let (h, p) = numeric() else { return text }
        return isIPv6 ? "[\(h)]:\(p)" : "\(h):\(p)"
    }

    /// The address alone, as numbers: "198.18.0.1", "2001:2::1".
    public var host: String { numeric()?.host ?? text }

    /// The port.
    public var port: UInt16 { numeric()?.port ?? 0 }

    /// A socket address as numbers: "198.18.0.1:4789", "[2001:2::1]:4789".
    public static func text(of address: UnsafePointer<sockaddr_storage>) -> String {
        let v6 = Int32(address.pointee.ss_family) == AF_INET6
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)), service = [CChar](repeating: 0, count: 32)
        let r = address.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            getnameinfo($0, socklen_t(v6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size), &host,
                        socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
        }
        guard r == 0 else { return "?" }
        let h = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let s = service.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return v6 ? "[\(h)]:\(s)" : "\(h):\(s)"
    }

    private func numeric() -> (host: String, port: UInt16)? {
        var copy = address
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST)), service = [CChar](repeating: 0, count: 32)
        let r = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard r == 0 else { return nil }
        let h = host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let s = service.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return (h, UInt16(s) ?? 0)
    }

    /// Parses and resolves `text` (in `namespace`), preferring `family` (AF_INET/AF_INET6) if given.
    public init(_ text: String, defaultPort: UInt16 = 4789, family: Int32? = nil, namespace: String? = nil) throws {
        self.text = text
        var host = text, port = String(defaultPort)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw PortError("invalid address \(text) (write [IPv6]:PORT)") }
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw PortError("invalid address \(text) (write [IPv6]:PORT)") }
                port = String(rest.dropFirst())
            }
        } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
            host = String(text[..<colon])
            port = String(text[text.index(after: colon)...])
        }
        guard let p = UInt16(port) else { throw PortError("invalid port in \(text) (0-65535)") }
        guard !host.isEmpty else { throw PortError("invalid address \(text) (ADDR:PORT)") }
        var hints = addrinfo()
        hints.ai_family = family ?? AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = try NetworkNamespace.run(in: namespace) { getaddrinfo(host, String(p), &hints, &result) }
        guard status == 0, let first = result else {
            let reason = String(cString: gai_strerror(status))
            throw PortError("cannot resolve \(host)\(family.map { $0 == AF_INET6 ? " (IPv6)" : " (IPv4)" } ?? ""): \(reason)")
        }
        defer { freeaddrinfo(result) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen))) }
        address = storage
        length = first.pointee.ai_addrlen
    }

    /// Whether `other` has the same IP address (any port): datagrams from a remote may come from
    /// any source port.
    @inline(__always)
    public func sameHost(as other: UnsafePointer<sockaddr_storage>) -> Bool {
        guard other.pointee.ss_family == address.ss_family else { return false }
        return withUnsafeBytes(of: address) { mine in
            let theirs = UnsafeRawPointer(other)
            if isIPv6 {
                // sockaddr_in6: sin6_addr at offset 8, 16 bytes.
                return mine.load(fromByteOffset: 8, as: UInt64.self) == theirs.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
                    && mine.load(fromByteOffset: 16, as: UInt64.self) == theirs.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
            }
            // sockaddr_in: sin_addr at offset 4.
            return mine.load(fromByteOffset: 4, as: UInt32.self) == theirs.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        }
    }
}
