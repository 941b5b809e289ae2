// VSwitchCore: the switch itself, free of I/O, Foundation and port kinds.
//
// What is here: packet buffers cut from a fixed pool (`PacketPool`, `PacketBatch`), the one
// batched `Port` protocol every port kind implements, the `MACTable` (open addressing keyed by
// (VLAN, MAC) packed into a UInt64), per-port `PortCounters`, and the `LearningSwitch` that
// learns, forwards known unicast, floods the rest and never sends a frame back where it came from.
//
// Threading rule: everything here belongs to exactly one data-plane thread. Nothing is locked and
// nothing is shared; the control plane talks to a switch only through messages that thread drains
// between batches (see VSwitchDataPlane), and reads state as snapshots built by that thread.
//
// Time is a parameter: callers pass `now` (nanoseconds on any monotonic clock), so tests drive
// ageing with a virtual clock and the core never reads a clock itself.
//
// The numbers behind the choices:
// - Batches of 64 frames: big enough that the per-batch costs (one existential call per port and
//   direction, one epoll round) vanish per frame, small enough that a batch of 64 KiB superframes
//   (4 MiB) stays in L2/L3 alongside the MAC table.
// - MAC table slots are 16 bytes and the table is sized at twice `max-macs` (rounded up to a power
//   of two) when the switch is made, so learning never allocates and the probe sequence stays short
//   (load factor <= 0.5). The default 65,536 MACs cost 2 MiB per switch.
// - Buffers are 64 KiB plus headroom: a TSO superframe from a TAP with a virtio-net header fits
//   whole, and encapsulations can grow a frame in place by moving its offset into the headroom.
