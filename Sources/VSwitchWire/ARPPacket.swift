/// A checked view of an ARP packet for IPv4 over Ethernet (RFC 826), the only kind a switch sees.
///
///     0       2       4    5    6      8          14         18         24         28
///     +-------+-------+----+----+------+----------+----------+----------+----------+
///     | htype | ptype |hlen|plen|  op  |   sha    |   spa    |   tha    |   tpa    |
///     |   1   |0x0800 | 6  | 4  |      |  sender  |  sender  |  target  |  target  |
///
/// Validation requires the 28 bytes and htype 1 (Ethernet), ptype 0x0800 (IPv4), hlen 6, plen 4:
/// the address fields are only where the accessors read them when those hold. Other hardware or
/// protocol types are not ARP this module can interpret, and are rejected rather than misread.
public struct ARPPacket {
    /// The packet and anything after it (Ethernet padding, usually).
    public let bytes: UnsafeRawBufferPointer

    /// Bytes of an Ethernet/IPv4 ARP packet: 28.
    public static let length = 28

    /// Byte offsets of the fields for hlen 6, plen 4.
    enum Field {
        static let hardwareType = 0..<2
        static let protocolType = 2..<4
        static let hardwareLength = 4
        static let protocolLength = 5
        static let operation = 6..<8
        static let senderHardwareAddress = 8..<14
        static let senderProtocolAddress = 14..<18
        static let targetHardwareAddress = 18..<24
        static let targetProtocolAddress = 24..<28
        static let end = 28
    }

    /// ARP's hardware type for Ethernet.
    static let ethernetHardwareType: UInt16 = 1

    /// A view of `bytes`, or nil if they are shorter than 28 bytes or not Ethernet/IPv4 ARP.
    public init?(validating bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Field.end else { return nil }
        guard bytes.loadBigEndian(fromByteOffset: Field.hardwareType.lowerBound, as: UInt16.self) == ARPPacket.ethernetHardwareType,
              bytes.loadBigEndian(fromByteOffset: Field.protocolType.lowerBound, as: UInt16.self) == EtherType.ipv4.rawValue,
              bytes[Field.hardwareLength] == 6,
              bytes[Field.protocolLength] == 4
        else { return nil }
        self.bytes = bytes
    }

    /// Request or reply (or something else, kept as is).
    public var operation: ARPOperation {
        ARPOperation(rawValue: bytes.loadBigEndian(fromByteOffset: Field.operation.lowerBound, as: UInt16.self))
    }

    public var senderHardwareAddress: MACAddress {
        bytes.loadMACAddress(fromByteOffset: Field.senderHardwareAddress.lowerBound)
    }

    public var senderProtocolAddress: IPv4Address {
        IPv4Address(rawValue: bytes.loadBigEndian(fromByteOffset: Field.senderProtocolAddress.lowerBound, as: UInt32.self))
    }

    /// Zero in a request: the address being asked for is `targetProtocolAddress`.
    public var targetHardwareAddress: MACAddress {
        bytes.loadMACAddress(fromByteOffset: Field.targetHardwareAddress.lowerBound)
    }

    public var targetProtocolAddress: IPv4Address {
        IPv4Address(rawValue: bytes.loadBigEndian(fromByteOffset: Field.targetProtocolAddress.lowerBound, as: UInt32.self))
    }
}

extension ARPPacket: CustomStringConvertible {
    /// `ARP request who-has 192.0.2.2 tell 192.0.2.1 (02:00:00:00:00:01)`, or the generic form.
    public var description: String {
        switch operation {
        case .request:
            return "ARP request who-has \(targetProtocolAddress) tell \(senderProtocolAddress) (\(senderHardwareAddress))"
        case .reply:
            return "ARP reply \(senderProtocolAddress) is-at \(senderHardwareAddress) to \(targetProtocolAddress) (\(targetHardwareAddress))"
        default:
            return "ARP op=\(operation) sha=\(senderHardwareAddress) spa=\(senderProtocolAddress) tha=\(targetHardwareAddress) tpa=\(targetProtocolAddress)"
        }
    }
}

/// The ARP opcode. A struct over the raw value so RARP and other opcodes are kept, printed in hex.
public struct ARPOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let request = ARPOperation(rawValue: 1)
    public static let reply = ARPOperation(rawValue: 2)

    /// `request`, `reply`, or hex: `0x0003`.
    public var description: String {
        switch self {
        case .request: return "request"
        case .reply: return "reply"
        default: return hexString(rawValue, digits: 4)
        }
    }
}

/// The fields of an Ethernet/IPv4 ARP packet.
public struct ARPRepr: Hashable, Sendable {
    public var operation: ARPOperation
    public var senderHardwareAddress: MACAddress
    public var senderProtocolAddress: IPv4Address
    public var targetHardwareAddress: MACAddress
    public var targetProtocolAddress: IPv4Address

    public init(operation: ARPOperation,
                senderHardwareAddress: MACAddress, senderProtocolAddress: IPv4Address,
                targetHardwareAddress: MACAddress, targetProtocolAddress: IPv4Address) {
        self.operation = operation
        self.senderHardwareAddress = senderHardwareAddress
        self.senderProtocolAddress = senderProtocolAddress
        self.targetHardwareAddress = targetHardwareAddress
        self.targetProtocolAddress = targetProtocolAddress
    }

    /// The fields of a validated packet. Cannot fail: validation already fixed the types and lengths.
    public static func parse(_ packet: ARPPacket) -> ARPRepr {
        ARPRepr(operation: packet.operation,
                senderHardwareAddress: packet.senderHardwareAddress,
                senderProtocolAddress: packet.senderProtocolAddress,
                targetHardwareAddress: packet.targetHardwareAddress,
                targetProtocolAddress: packet.targetProtocolAddress)
    }

    /// Bytes `emit(into:)` writes: 28.
    public var length: Int { ARPPacket.length }

    /// Writes the 28-byte packet at the start of `buffer` and returns 28, or nil (writing nothing)
    /// if the buffer is shorter than that.
    public func emit(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        typealias Field = ARPPacket.Field
        guard buffer.count >= Field.end else { return nil }
        buffer.storeBigEndian(ARPPacket.ethernetHardwareType, toByteOffset: Field.hardwareType.lowerBound)
        buffer.storeBigEndian(EtherType.ipv4.rawValue, toByteOffset: Field.protocolType.lowerBound)
        buffer[Field.hardwareLength] = 6
        buffer[Field.protocolLength] = 4
        buffer.storeBigEndian(operation.rawValue, toByteOffset: Field.operation.lowerBound)
        buffer.storeMACAddress(senderHardwareAddress, toByteOffset: Field.senderHardwareAddress.lowerBound)
        buffer.storeBigEndian(senderProtocolAddress.rawValue, toByteOffset: Field.senderProtocolAddress.lowerBound)
        buffer.storeMACAddress(targetHardwareAddress, toByteOffset: Field.targetHardwareAddress.lowerBound)
        buffer.storeBigEndian(targetProtocolAddress.rawValue, toByteOffset: Field.targetProtocolAddress.lowerBound)
        return Field.end
    }
}
