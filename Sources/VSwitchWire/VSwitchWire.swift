// VSwitchWire: the wire formats vswitch reads and writes.
//
// What it is. Each format comes in two halves, after smoltcp's `wire` module:
//
//   * a *view* (`EthernetFrame`, `VLANTag`, `ARPPacket`, `IPv4Header`, `IPv6Header`): a checked window
//     over bytes someone else owns. It copies nothing and allocates nothing; it is how the switch core
//     looks at a frame it is about to forward.
//   * a *Repr* (`EthernetRepr`, `VLANTagRepr`, `ARPRepr`, `IPv4Repr`, `IPv6Repr`): a small value holding
//     the fields that matter, with `parse(_:)` from a view and `emit(into:)` back to bytes. It is how
//     tests, the lab and the control plane build packets.
//
// The rules.
//
//   1. Length is checked once. `init?(validating:)` is the only way to make a view, and it returns nil
//      unless every accessor can then read without going past the end. After that, accessors do no
//      bounds checks of their own. Validation checks only what reading needs (and the version nibble,
//      so an IPv4Header is IPv4); semantic checks (the IPv4 checksum, ARP's hardware type) belong to
//      `parse`, which returns nil when the bytes are well formed but not something we can represent.
//   2. Hostile input never traps. Frames come from guests and the network; every length field is
//      compared against the buffer before it is trusted, and a fuzz test throws random bytes at every
//      view. Arithmetic on header fields is done in `Int`, where it cannot overflow.
//   3. Reads are big-endian and unaligned: `loadUnaligned(fromByteOffset:as:)` then `.bigEndian`. An
//      Ethernet payload starts at offset 14, so nothing after the MAC addresses is naturally aligned.
//   4. Field offsets are named ranges in a nested `Field` enum per view, never bare numbers in accessors.
//   5. Emit writes into a caller-owned `UnsafeMutableRawBufferPointer` and returns the number of bytes
//      written, or nil if the buffer is too small or a field value does not fit its wire field. Nothing
//      throws and nothing allocates; a Repr emits only its own header, so encapsulation is a matter of
//      emitting each layer at a growing offset into the same buffer.
//   6. Unknown values are kept. `EtherType`, `IPProtocol` and `ARPOperation` are structs over their raw
//      integer, not enums, so a frame with an EtherType we have never heard of round-trips unchanged and
//      prints in hex (`0x88cc`).
//
// Offloads. A TAP hands over frames with a 10-byte virtio-net header (`VirtioNetHeader`) saying the
// TCP/UDP checksum is still to be done, or that the frame is a superframe of up to 64 KiB to be cut
// at the MSS. Ports that speak no such header need plain frames: `completeChecksum(in:)` finishes a
// checksum in place, `GSOSegmenter` builds wire-sized segments into caller-owned scratch memory, and
// `VirtioNetHeader.infer(frame:mtu:)` goes the other way, describing a frame captured without a
// header (checksum-partial, or larger than the MTU). `TCPSegmentMerge` is the segmenter's inverse:
// the rules by which userspace GRO merges TCP segments into a superframe and the headers that
// superframe gets (the batch walk that applies them lives with the port that merges). They follow
// the kernel (`skb_checksum_help`, `tcp_gso_segment`, `tcp_gro_receive`, `tcp_gro_complete`) field
// for field, allocate nothing, and report malformed input as a value (`GSOSegmenter.Failure`, nil,
// false). `TransportLayout` is their shared parse.
//
// Threading. Values (addresses, Reprs, `EtherType`, ...) are `Sendable`. Views are deliberately not: a
// view borrows a buffer owned by one data-plane thread, is only valid while that buffer is, and must not
// outlive or leave that thread. Copy the fields you need into a Repr to hand them elsewhere.
//
// The numbers. Ethernet header 14 bytes, 18 with one 802.1Q tag; ARP for Ethernet/IPv4 28 bytes; IPv4
// header 20..60 bytes; IPv6 fixed header 40 bytes. The accessors the switch core calls for every frame
// (`EthernetFrame.destination`, `.source`, `.etherType`, `init?(validating:)`) are `@inlinable` so they
// compile to two or three loads in the caller's module; the rest are ordinary calls.
//
// This module imports nothing but the standard library: no Foundation, no I/O.
