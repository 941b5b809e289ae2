// The ARP (RFC 826) and IPv6 neighbour discovery (RFC 4861) messages the shim reads and makes.
import VSwitchCore
import VSwitchWire

/// Numbers of IPv6 neighbour discovery (RFC 4861 section 4) that VSwitchWire has no view for yet.
enum NeighbourDiscovery {
    static let routerSolicitation: UInt8 = 133
    static let redirect: UInt8 = 137
    static let neighbourSolicitation: UInt8 = 135
    static let neighbourAdvertisement: UInt8 = 136
    /// Option types: the sender's link-layer address (in solicitations), the target's (in advertisements).
    static let sourceLinkLayerAddress: UInt8 = 1
    static let targetLinkLayerAddress: UInt8 = 2
    /// Advertisement flags, in the first byte after the checksum.
    static let solicitedFlag: UInt8 = 0x40
    static let overrideFlag: UInt8 = 0x20
    /// Type, code, checksum, 4 bytes of reserved or flags, the 16-byte target.
    static let messageLength = 24
    /// A solicitation or advertisement with its one link-layer address option (8 bytes).
    static let messageWithOptionLength = 32
    /// Ethernet, IPv6 and that message: 86 bytes.
    static let frameLength = EthernetFrame.headerLength + IPv6Header.headerLength + messageWithOptionLength
    /// Hop limit of every ND message; anything else was forwarded by a router and is refused.
    static let hopLimit: UInt8 = 255
    /// ff02::1, all nodes, where an answer to a duplicate address probe goes.
    static let allNodes = IPv6Address(high: 0xff02_0000_0000_0000, low: 1)

    /// Router solicitation to redirect (133...137): link-layer business a TUN host has no use for.
    @inline(__always)
    static func isNeighbourDiscovery(_ type: UInt8) -> Bool { (routerSolicitation...redirect).contains(type) }

    /// The solicited-node multicast group of `address`: ff02::1:ffXX:XXXX.
    @inline(__always)
    static func solicitedNode(_ address: IPv6Address) -> IPv6Address {
        IPv6Address(high: 0xff02_0000_0000_0000, low: 0x0000_0001_ff00_0000 | address.low & 0xff_ffff)
    }

    /// The Ethernet group an IPv6 multicast address maps to: 33:33 and its last 32 bits (RFC 2464).
    @inline(__always)
    static func multicastMAC(_ address: IPv6Address) -> MACAddress {
        MACAddress(rawValue: 0x3333_0000_0000 | address.low & 0xffff_ffff)
    }

    /// The ICMPv6 checksum of `message` under the IPv6 header at `ipHeader` (its source and
    /// destination, the message length, next header 58: the RFC 8200 pseudo-header). Over a
    /// message whose checksum field is filled in, 0 when that checksum is right.
    static func checksum(ipHeader: UnsafeRawPointer, message: UnsafeRawBufferPointer) -> UInt16 {
        var sum = InternetChecksum()
        sum.add(UnsafeRawBufferPointer(start: ipHeader + 8, count: 32))
        sum.add(UInt16(truncatingIfNeeded: message.count >> 16))
        sum.add(UInt16(truncatingIfNeeded: message.count))
        sum.add(UInt16(0))
        sum.add(UInt16(IPProtocol.icmpv6.rawValue))
        sum.add(message)
        return sum.value
    }
}

extension NeighbourShim {
    /// Bytes of a made-up ARP frame: Ethernet's minimum of 60 (the 42 that matter, zero padded).
    static let arpFrameLength = 60

    // MARK: - Reading

    /// Answers requests for a peer address; learns senders that asked us or that we wait for.
    func handleARP(_ payload: UnsafeRawBufferPointer, _ frame: ReceivedFrame, now: UInt64,
                   counters: PortCounters) -> Decapsulation {
        guard let arp = ARPPacket(validating: payload) else { return unwanted(frame.isOurs,counters) }
        let senderMAC = arp.senderHardwareAddress
        guard senderMAC.isUnicast && !senderMAC.isZero else { return unwanted(frame.isOurs,counters) }
        let senderIP = arp.senderProtocolAddress, targetIP = arp.targetProtocolAddress
        let sender = IPv6Address(ipv4Mapped: senderIP)
        let target = IPv6Address(ipv4Mapped: targetIP)
        // A probe (sender 0.0.0.0) teaches nothing; a peer's address announced by someone else
        // is a conflict we do not resolve by believing it.
        let teaches = !senderIP.isUnspecified && !isPeer(sender)
        switch arp.operation {
        case .request where isPeer(target) && senderIP != targetIP:
            if teaches { learn(sender, at: senderMAC, now: now) }
            queueARPReply(from: target, to: senderIP, at: senderMAC, counters: counters)
            return .handled
        case .request, .reply:
            if teaches && (frame.isOurs || arp.targetHardwareAddress == mac || wants(sender, now: now)) {
                learn(sender, at: senderMAC, now: now)
                return .handled
            }
            return ignore()
        default:
            return unwanted(frame.isOurs,counters)
        }
    }

    /// Answers solicitations for a peer address; learns from solicitations and advertisements.
    /// Router solicitations, advertisements and redirects are nobody's business behind a TUN.
    func handleNeighbourDiscovery(_ ip: IPv6Header, _ frame: ReceivedFrame, now: UInt64,
                                  counters: PortCounters) -> Decapsulation {
        let message = ip.payload
        let type = message[0]
        guard type == NeighbourDiscovery.neighbourSolicitation || type == NeighbourDiscovery.neighbourAdvertisement else {
            return ignore()
        }
        // RFC 4861 7.1.1 and 7.1.2: hop limit 255, code 0, at least 24 bytes, a valid checksum,
        // a unicast target, options of non-zero length.
        guard ip.hopLimit == NeighbourDiscovery.hopLimit, message.count >= NeighbourDiscovery.messageLength, message[1] == 0,
              frame.checksumIsPartial || NeighbourDiscovery.checksum(ipHeader: ip.bytes.baseAddress!, message: message) == 0
        else { return unwanted(frame.isOurs,counters) }
        let base = message.baseAddress!
        let target = base.loadIPv6Address(fromByteOffset: 8)
        guard !target.isMulticast && !target.isUnspecified else { return unwanted(frame.isOurs,counters) }
        let wantedOption = type == NeighbourDiscovery.neighbourSolicitation
            ? NeighbourDiscovery.sourceLinkLayerAddress : NeighbourDiscovery.targetLinkLayerAddress
        var linkLayer: MACAddress?
        var offset = NeighbourDiscovery.messageLength
        while offset + 2 <= message.count {
            let optionLength = Int(message[offset + 1]) * 8
            guard optionLength > 0, offset + optionLength <= message.count else { return unwanted(frame.isOurs,counters) }
            if message[offset] == wantedOption && optionLength >= 8 {
                linkLayer = base.loadMACAddress(fromByteOffset: offset + 2)
            }
            offset += optionLength
        }
        if let linkLayer, linkLayer.isMulticast || linkLayer.isZero { return unwanted(frame.isOurs,counters) }
        let source = ip.source
        if type == NeighbourDiscovery.neighbourSolicitation {
            guard isPeer(target) else {
                if !source.isUnspecified, !isPeer(source), wants(source, now: now) {
                    learn(source, at: linkLayer ?? frame.source, now: now)
                }
                return ignore()
            }
            if source.isUnspecified {
                // Someone probes for the peer's address (duplicate address detection): defend it
                // to all nodes, unsolicited (RFC 4861 7.2.4).
                queueAdvertisement(of: target, to: NeighbourDiscovery.allNodes,
                                   at: NeighbourDiscovery.multicastMAC(NeighbourDiscovery.allNodes),
                                   solicited: false, counters: counters)
            } else {
                let sourceMAC = linkLayer ?? frame.source
                if !isPeer(source) { learn(source, at: sourceMAC, now: now) }
                queueAdvertisement(of: target, to: source, at: sourceMAC, solicited: true, counters: counters)
            }
            return .handled
        }
        guard !isPeer(target), frame.isOurs || wants(target, now: now) else { return ignore() }
        learn(target, at: linkLayer ?? frame.source, now: now)
        return .handled
    }

    // MARK: - Making

    /// Asks the switch for `destination`'s MAC: an ARP request, or a neighbour solicitation to its
    /// solicited-node group, from the peer address that fits (see `senderAddress`).
    func solicit(_ destination: IPv6Address, from packetSource: IPv6Address) {
        let sender = senderAddress(toward: destination, packetSource: packetSource)
        if let target = destination.ipv4Mapped {
            let queued = outbox.append { bytes in
                writeEthernetHeader(at: bytes, to: .broadcast, etherType: .arp)
                _ = ARPRepr(operation: .request, senderHardwareAddress: mac,
                            senderProtocolAddress: sender.ipv4Mapped ?? .any,
                            targetHardwareAddress: .zero, targetProtocolAddress: target)
                    .emit(into: UnsafeMutableRawBufferPointer(start: bytes + EthernetFrame.headerLength, count: ARPPacket.length))
                return Self.arpFrameLength
            }
            if queued { statistics.arpRequestsSent &+= 1 } else { statistics.controlFramesLost &+= 1 }
        } else {
            let group = NeighbourDiscovery.solicitedNode(destination)
            let queued = outbox.append { bytes in
                writeNeighbourMessage(into: bytes, type: NeighbourDiscovery.neighbourSolicitation, flags: 0,
                                      source: sender, destination: group, to: NeighbourDiscovery.multicastMAC(group),
                                      target: destination, option: NeighbourDiscovery.sourceLinkLayerAddress)
            }
            if queued { statistics.solicitationsSent &+= 1 } else { statistics.controlFramesLost &+= 1 }
        }
    }

    /// The address to ask from: the packet's own source when it is a peer address (as Linux
    /// prefers), else the first peer of the family whose prefix holds the destination, else the
    /// first of the family, else the packet's source.
    func senderAddress(toward destination: IPv6Address, packetSource: IPv6Address) -> IPv6Address {
        if isPeer(packetSource) { return packetSource }
        let wantsIPv4 = destination.ipv4Mapped != nil
        var first: IPv6Address?
        for index in 0..<peerCount where peerStorage[index].isIPv4 == wantsIPv4 {
            if peerStorage[index].contains(destination) { return peerStorage[index].key }
            if first == nil { first = peerStorage[index].key }
        }
        return first ?? packetSource
    }

    /// Queues an ARP reply: `sender` (a peer address) is at `mac`; to `targetIP` at `targetMAC`.
    func queueARPReply(from sender: IPv6Address, to targetIP: IPv4Address, at targetMAC: MACAddress,
                       counters: PortCounters) {
        let queued = outbox.append { bytes in
            writeEthernetHeader(at: bytes, to: targetMAC, etherType: .arp)
            _ = ARPRepr(operation: .reply, senderHardwareAddress: mac, senderProtocolAddress: sender.ipv4Mapped ?? .any,
                        targetHardwareAddress: targetMAC, targetProtocolAddress: targetIP)
                .emit(into: UnsafeMutableRawBufferPointer(start: bytes + EthernetFrame.headerLength, count: ARPPacket.length))
            return Self.arpFrameLength
        }
        if queued { statistics.arpRepliesSent &+= 1 } else { lostAnswer(counters) }
    }

    /// Queues a neighbour advertisement of `target` at `mac`, override set (it is the peer's
    /// address, ours to answer for), to `destination` at `destinationMAC`.
    func queueAdvertisement(of target: IPv6Address, to destination: IPv6Address, at destinationMAC: MACAddress,
                            solicited: Bool, counters: PortCounters) {
        let flags = NeighbourDiscovery.overrideFlag | (solicited ? NeighbourDiscovery.solicitedFlag : 0)
        let queued = outbox.append { bytes in
            writeNeighbourMessage(into: bytes, type: NeighbourDiscovery.neighbourAdvertisement, flags: flags,
                                  source: target, destination: destination, to: destinationMAC,
                                  target: target, option: NeighbourDiscovery.targetLinkLayerAddress)
        }
        if queued { statistics.advertisementsSent &+= 1 } else { lostAnswer(counters) }
    }

    /// Writes a whole solicitation or advertisement frame with one link-layer address option
    /// (ours) into zeroed `bytes`; returns its length, 86.
    func writeNeighbourMessage(into bytes: UnsafeMutableRawPointer, type: UInt8, flags: UInt8,
                               source: IPv6Address, destination: IPv6Address, to destinationMAC: MACAddress,
                               target: IPv6Address, option: UInt8) -> Int {
        writeEthernetHeader(at: bytes, to: destinationMAC, etherType: .ipv6)
        let ipHeader = bytes + EthernetFrame.headerLength
        _ = IPv6Repr(source: source, destination: destination, nextHeader: .icmpv6,
                     payloadLength: NeighbourDiscovery.messageWithOptionLength, hopLimit: NeighbourDiscovery.hopLimit)
            .emit(into: UnsafeMutableRawBufferPointer(start: ipHeader, count: IPv6Header.headerLength))
        let message = ipHeader + IPv6Header.headerLength
        message.storeBytes(of: type, as: UInt8.self)
        message.storeBytes(of: flags, toByteOffset: 4, as: UInt8.self)
        message.storeIPv6Address(target, toByteOffset: 8)
        message.storeBytes(of: option, toByteOffset: 24, as: UInt8.self)
        message.storeBytes(of: 1, toByteOffset: 25, as: UInt8.self)  // length in units of 8 bytes
        message.storeMACAddress(mac, toByteOffset: 26)
        let checksum = NeighbourDiscovery.checksum(
            ipHeader: ipHeader, message: UnsafeRawBufferPointer(start: message, count: NeighbourDiscovery.messageWithOptionLength))
        message.storeBigEndian(checksum, toByteOffset: 2)
        return NeighbourDiscovery.frameLength
    }
}
