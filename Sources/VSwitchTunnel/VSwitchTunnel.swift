// VSwitchTunnel: the wire formats and the security of the UDP tunnel port, without any I/O.
//
// What it is. Two encapsulations of an inner Ethernet frame in a UDP datagram (SPEC section 7):
//
//   * `vxlan`: RFC 7348. `VXLANHeader` (a checked view) and `VXLANRepr` (emit into headroom), and
//     `VXLANSourcePort`, which picks the outer UDP source port per inner flow from `FlowHash` the
//     way the kernel's `vxlan` device does, within 32768...60999.
//   * `secure` (version 2, Docs/secure-wire-format.md): WireGuard's protocol with SHA-256. Each
//     site has a static X25519 key pair (`SecurePrivateKey`, `SecurePublicKey`); a handshake per
//     remote (`SecureHandshake`: Noise_IKpsk2_25519_ChaChaPoly_SHA256, mac1/mac2, cookies) makes
//     session keys that live in memory only; `SecureTunnel` is the engine of one port: sessions
//     found by index in constant time, sealing and opening with the data cipher (AES-256-GCM or
//     ChaCha20-Poly1305, `AEAD`), a `ReplayWindow` per session, timers (rekey after 120 s or
//     2^60 messages, reject after 180 s), incarnations that erase everything a restarted peer
//     sealed before, rate limits and cookies against handshake floods, roaming. `SecureKey` is a
//     32-byte secret (a key file line, the pre-shared key), `SecureKeyFile` loads one.
//
// The port (sockets, endpoints, MTU, counters, logs) lives in VSwitchPorts and calls in here
// with buffers it owns, the time, and the datagrams' source addresses; the engine puts the
// messages it wants sent (handshakes, cookie replies, keepalives) in an outbox the port drains.
// Nothing here reads a socket; the one clock read is the handshake's wall-clock timestamp
// (`SecureTunnel.realtime`, replaceable in tests).
//
// The rules are VSwitchWire's: views check lengths before reading, reads are big-endian and
// unaligned, emitters write into caller-owned buffers, and no datagram, however hostile, traps.
// Every drop has a reason (`SecureDropReason`) the port counts.
//
// Threading. Keys, configurations and drop reasons are Sendable values. A `SecureTunnel`
// (sessions, counters, replay windows, expanded keys) belongs to the data-plane thread that owns
// its port.
//
// Allocation. Handshakes (a few a minute per remote, rate-limited) use swift-crypto's allocating
// API. Sealing and opening data do not allocate: `AEAD` calls BoringSSL through a C shim (CAEAD)
// with a context made once per session key, and mac1 checks use BoringSSL's one-shot HMAC. The
// numbers: 36 bytes of overhead per data datagram, a replay window of 1,984 counters per
// session, 64 remotes per port (a 256-slot session table), 156/100/64-byte handshake messages.
