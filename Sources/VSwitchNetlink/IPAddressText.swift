import CNetlink
import Glibc

/// Text <-> libnl `nl_addr` for IP addresses.
enum IPAddressText {
    /// Parses "198.18.0.1/24", "198.18.0.1" (a /32), "2001:2::1/64"; the result is referenced: put it.
    static func parse(_ text: String, call: NetlinkSocket.Call) throws -> OpaquePointer {
        var address: OpaquePointer?
        let looksIP = text.contains(":") || text.first.map { $0.isNumber } == true
        guard looksIP, nl_addr_parse(text, AF_UNSPEC, &address) >= 0, let address else {
            throw call.failure(EINVAL, "\"\(text)\" is not an IPv4 or IPv6 address")
        }
        let family = nl_addr_get_family(address)
        guard family == AF_INET || family == AF_INET6 else {
            nl_addr_put(address)
            throw call.failure(EINVAL, "\"\(text)\" is not an IPv4 or IPv6 address")
        }
        return address
    }

    /// The address alone, without prefix length.
    static func string(_ address: OpaquePointer) -> String? {
        let family = nl_addr_get_family(address)
        guard family == AF_INET || family == AF_INET6, let bytes = nl_addr_get_binary_addr(address) else {
            return nil
        }
        let expected = family == AF_INET ? 4 : 16
        guard nl_addr_get_len(address) == expected else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        guard inet_ntop(family, bytes, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        return String(nulTerminated: buffer)
    }

    static func family(_ raw: Int32) -> AddressFamily? {
        switch raw {
        case AF_INET: return .ipv4
        case AF_INET6: return .ipv6
        default: return nil
        }
    }
}

extension String {
    /// The text of a NUL-terminated C character buffer.
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
