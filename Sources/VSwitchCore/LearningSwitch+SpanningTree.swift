/// A port's spanning-tree state or role changed (for the daemon's log).
public struct SpanningTreeEvent: Sendable, Equatable {
    public var port: PortNumber
    public var state: SpanningTree.ForwardingState
    public var role: SpanningTree.Role
}

/// The switch's side of the spanning tree: BPDUs in and out, per-port forwarding states, the
/// MAC-table flushes of topology changes, link polling and the one-second tick.
///
/// The data path sees the tree only as one state byte per port: a port that does not forward
/// has its batches forwarded under `BlockedPolicy` (BPDUs to the tree, learning in the learning state,
/// everything else dropped as `stp-discarding`), is left out of the flood set, and has known
/// unicast for it dropped at flush (`stp-blocked`). BPDUs are copied into a fixed inbox during
/// the batch and handed to the tree after it, so the tree never changes a port mid-batch.
extension LearningSwitch {
    /// Starts the spanning tree with bridge address `address` (its low 48 bits), or changes its
    /// parameters if it runs. Every port starts discarding and the tree decides from there.
    public func startSpanningTree(_ parameters: SpanningTree.Parameters, address: UInt64, now: UInt64) {
        if let stp = spanningTree, stp.address == address & SpanningTree.addressMask {
            stp.setParameters(parameters)
            applySpanningTree(stp, now: now)
            return
        }
        let stp = SpanningTree(address: address, parameters: parameters)
        spanningTree = stp
        spanningTreeClock = now
        if bpduBatch == nil { bpduBatch = PacketBatch(capacity: 1, bufferSize: PacketPool.defaultHeadroom + 2048) }
        for n in attachedPorts { addToSpanningTree(n, stp) }
        applySpanningTree(stp, now: now)
    }

    /// Stops the spanning tree: every port forwards again.
    public func stopSpanningTree() {
        guard spanningTree != nil else { return }
        spanningTree = nil
        for n in attachedPorts { ports.forwardingStates[n] = 0 }
        inbox.count.pointee = 0
        floodSet.rebuild(states: ports.forwardingStates)
    }

    public var spanningTreeStatus: SpanningTree.Status? { spanningTree?.status }
    public var spanningTreeRuns: Bool { spanningTree != nil }

    /// The port state changes since the last call (at most 256 are kept between calls).
    public func takeSpanningTreeEvents() -> [SpanningTreeEvent] {
        defer { spanningTreeEvents.removeAll() }
        return spanningTreeEvents
    }

    /// Sets port `number`'s spanning-tree parameters (kept while the tree is off, too).
    public func setSpanningTreeParameters(_ parameters: SpanningTree.PortParameters, for number: PortNumber) {
        guard isValid(number) else { return }
        var p = parameters
        if devices[number] is any LayerThreePort { p.sendsBPDUs = false }
        spanningTreeParameters[number] = p
        if let stp = spanningTree {
            stp.setPortParameters(number, p)
            applySpanningTree(stp, now: spanningTreeClock)
        }
    }

    public func spanningTreeParameters(_ number: PortNumber) -> SpanningTree.PortParameters {
        spanningTreeParameters[number] ?? SpanningTree.PortParameters()
    }

    /// Polls the links and ticks the tree; call about ten times a second while it runs.
    public func serviceSpanningTree(now: UInt64) {
        guard let stp = spanningTree else { return }
        for n in attachedPorts {
            let up = (devices[n] as? any LinkStatePort)?.isLinkUp ?? true
            if up != stp.isEnabled(n) {
                stp.setEnabled(n, up)
                // A port that goes down loses what it learned at once, as a bridge does.
                if !up { flushLearned(n) }
            }
        }
        // Whole seconds since the last tick (`now` may be a little older than the clock the
        // tree started at; after a long stall, at most a few ticks are caught up).
        if now > spanningTreeClock &+ 10_000_000_000 { spanningTreeClock = now &- 1_000_000_000 }
        while now >= spanningTreeClock &+ 1_000_000_000 {
            spanningTreeClock &+= 1_000_000_000
            stp.tick()
        }
        applySpanningTree(stp, now: now)
    }

    func addToSpanningTree(_ n: PortNumber, _ stp: SpanningTree) {
        ports.forwardingStates[n] = SpanningTree.ForwardingState.discarding.rawValue
        var p = spanningTreeParameters[n] ?? SpanningTree.PortParameters()
        if devices[n] is any LayerThreePort { p.sendsBPDUs = false }
        stp.addPort(n, parameters: p)
        stp.setEnabled(n, (devices[n] as? any LinkStatePort)?.isLinkUp ?? true)
        floodSet.rebuild(states: ports.forwardingStates)
    }

    /// Forgets what was learned on port `n`: its table entries, and a tunnel's MAC -> remote cache.
    func flushLearned(_ n: PortNumber) {
        table.flush(port: n)
        (devices[n] as? any LearningPort)?.forgetLearned()
    }

    /// Takes what the tree decided: port states, flushes, BPDUs to send.
    func applySpanningTree(_ stp: SpanningTree, now: UInt64) {
        var changed = false
        for n in attachedPorts {
            let state = stp.state(of: n)
            if ports.forwardingStates[n] != state.rawValue {
                ports.forwardingStates[n] = state.rawValue
                changed = true
                if spanningTreeEvents.count < 256 { spanningTreeEvents.append(SpanningTreeEvent(port: n, state: state, role: stp.role(of: n))) }
            }
        }
        if changed { floodSet.rebuild(states: ports.forwardingStates) }
        for n in stp.takeFlushes() { flushLearned(n) }
        guard let batch = bpduBatch else { return }
        var index: UInt16 = 0
        for (n, frame) in stp.takeTransmits() {
            guard isValid(n), let port = devices[n] else { continue }
            batch.reset()
            batch.append(frame)
            if path.pointee.captureCount != 0, let ring = captures[n] { Self.copy(batch, all: 1, into: ring, now: now) }
            let counters = ports.counters(n)
            port.transmit(batch, indices: &index, count: 1, counters: counters)
        }
    }

    /// The frames of `batch` for a reserved link-local group: a BPDU goes to the tree's inbox
    /// while the tree runs; anything else (LACP, LLDP, pause, or BPDUs with the tree off) is
    /// dropped as `link-local`, as the Linux bridge and OVS do.
    @usableFromInline @inline(never)
    func linkLocal(_ batch: PacketBatch, from ingress: PortNumber, counters: PortCounters) {
        let frames = scratch.linkLocalCount.pointee
        scratch.linkLocalCount.pointee = 0
        for i in 0..<frames {
            let buffer = batch.buffers + Int(scratch.linkLocalFrames[i])
            let dst = UInt64(bigEndian: UnsafeRawPointer(buffer.pointee.frame).loadUnaligned(as: UInt64.self)) &>> 16
            guard dst == SpanningTree.groupAddress, spanningTree != nil,
                  inbox.append(buffer.pointee.frame, length: buffer.pointee.length, port: ingress) else {
                counters.drop(.linkLocal)
                continue
            }
        }
    }

    /// Hands the BPDUs of the last batch to the tree.
    @usableFromInline
    func receiveBPDUs(now: UInt64) {
        let n = inbox.count.pointee
        inbox.count.pointee = 0
        guard let stp = spanningTree else { return }
        for i in 0..<n { stp.receive(frame: inbox.frame(i), on: inbox.ports[i]) }
        applySpanningTree(stp, now: now)
    }
}
