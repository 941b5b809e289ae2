// VSwitchTunnel: the wire formats and the security of the UDP tunnel port, without any I/O.
//
// What it is. Two encapsulations of an inner Ethernet frame in a UDP datagram (SPEC section 7):
//
//   * `vxlan`: RFC 7348. `VXLANHeader` (a checked view) and `VXLANRepr` (emit into headroom), and
//     `VXLANSourcePort`, which picks the outer UDP source port per inner flow from `FlowHash` the
//     way the kernel's `vxlan` device does, within 32768...60999.
//   * `secure`: this project's own format, documented at the top of SecureHeader.swift:
//     ChaCha20-Poly1305 over VNI and frame, a cleartext 16-byte header (version, type, key id,
//     sender id, 64-bit counter) authenticated as associated data, 36 bytes of overhead.
//     `SecureChannel` seals and opens; `ReplayWindow`/`ReplayTable` reject replays; `SecureKey`,
//     `SecureKeyRing` and `SecureKeyFile` hold, rotate and load the keys.
//
// The port (sockets, peers, MTU, counters, logs) lives in VSwitchPorts and calls in here with
// buffers it owns: nothing in this module reads a socket or a clock.
//
// The rules are VSwitchWire's: views check lengths once in `init?(validating:)`, reads are
// big-endian and unaligned, emitters write into caller-owned buffers and return a byte count or
// nil, and no datagram, however hostile, traps. Every drop has a reason (`SecureDropReason`) the
// port counts.
//
// Threading. Keys, rings, Reprs and drop reasons are Sendable values. A `SecureChannel` (counter,
// replay windows, expanded keys) belongs to the data-plane thread that owns its port.
//
// Foundation. None here: swift-crypto's AEAD API speaks `Data`, so AEAD.swift calls the same
// BoringSSL through a C shim (CAEAD) instead, and the key-file loader uses Glibc directly. The
// numbers: 36 bytes of overhead per secure datagram, a replay window of 1,984 counters per sender, 16 senders
// per port, keys of 32 bytes with 8-bit ids; no allocation per sealed and opened datagram
// (see AEAD.swift and the allocation test).
