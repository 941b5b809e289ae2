/// The keys a secure tunnel port holds: the current key, which seals everything it sends, and
/// optionally a second one that it also accepts when opening.
///
/// Rotation without a gap, with a key file of one or two keys (first line current, second previous):
///
///   1. every peer: `OLD` then `NEW`: seal with OLD, accept NEW too (nobody sends NEW yet);
///   2. every peer: `NEW` then `OLD`: seal with NEW, still accept OLD from peers not yet here;
///   3. every peer: `NEW` alone.
///
/// So the second key is "the previous one" in step 2 and "the next one" in step 1; either way it
/// is only ever accepted, never used to seal. Opening picks keys by id; if both keys have the same
/// id (one rotation in 256, the ids being 8 bits derived from the keys) the opener tries both.
public struct SecureKeyRing: Equatable, Sendable {
    /// Seals every datagram and opens those that carry its id.
    public var current: SecureKey

    /// Opens datagrams that carry its id; never seals. Nil when the ring holds one key.
    public var previous: SecureKey?

    /// A ring of `current` and, if given and different, `previous`.
    public init(current: SecureKey, previous: SecureKey? = nil) {
        self.current = current
        self.previous = previous == current ? nil : previous
    }

    /// The ring after installing `next`: `next` seals, the current key is still accepted, and the
    /// previous one is dropped.
    public func rotated(to next: SecureKey) -> SecureKeyRing {
        SecureKeyRing(current: next, previous: current)
    }

    /// The keys, current first.
    public var keys: [SecureKey] { previous.map { [current, $0] } ?? [current] }
}
