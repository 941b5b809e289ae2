// VSwitchDataPlane: the threads that move frames.
//
// One `DataPlane` per switch: a dedicated thread that owns the switch's `LearningSwitch`, its
// ports and its packet pool. It waits in epoll (level-triggered) on every port's fd and on a
// doorbell eventfd; for each ready port it drains up to `roundsPerWakeup` batches of
// `batchCapacity` frames (receive, process, flush), then moves on, so one busy port cannot starve
// the others. A port that read more from its device than it has handed over (a tunnel port's
// UDP GRO messages: `BufferingPort`) is polled again before the thread sleeps, since its fd no
// longer says so. Between wake-ups, at most once a second, it ages the MAC table.
//
// The control plane never touches the switch. It posts closures to the mailbox and rings the
// doorbell; the data-plane thread runs them between batches and answers through a continuation.
// Snapshots for `fdb show` and `stats` are built that way, on the data-plane thread, so the packet
// path has no locks and no shared mutable state. The mailbox's mutex is taken only when the
// doorbell rings, never per frame.
import Dispatch
import Synchronization
import VSwitchCore
import VSwitchSystem

/// Boxes a value that is handed from one thread to another exactly once (a port being attached,
/// a snapshot being returned). The handover through the mailbox is the synchronisation.
public struct Handover<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

public final class DataPlane: @unchecked Sendable {
    public typealias Job = @Sendable (DataPlane) -> Void

    public let name: String
    public let batchCapacity: Int
    public static let roundsPerWakeup = 8
    static let doorbellToken = UInt64.max
    static let treeServiceInterval: UInt64 = 100_000_000

    /// Valid only on the data-plane thread (and before `start`).
    public let switching: LearningSwitch
    private let epoll: Epoll
    private let doorbell: EventFD
    private let pool: PacketPool
    private let mailbox = Mutex<[Job]>([])
    private var thread: PThread?
    private var running = true
    /// Ports that hold frames for later (impairments), served between batches.
    private var timedPorts: [(number: PortNumber, port: any TimedPort)] = []
    /// Ports that may hold input read from their device but not yet received (`BufferingPort`).
    private var bufferingPorts: [(number: PortNumber, port: any BufferingPort)] = []

    public init(name: String, settings: LearningSwitch.Settings, batchCapacity: Int = 64) throws {
        self.name = name
        self.batchCapacity = batchCapacity
        switching = LearningSwitch(settings: settings, batchCapacity: batchCapacity)
        epoll = try Epoll(capacity: 64)
        doorbell = try EventFD()
        pool = PacketPool(bufferCount: batchCapacity)
        try epoll.add(doorbell.fd, token: Self.doorbellToken)
    }

    public func start() throws {
        thread = try PThread(name: "dp-\(name)") { [self] in run() }
    }

    /// Runs `job` on the data-plane thread between batches (at once, if the thread is not running).
    public func post(_ job: @escaping Job) {
        guard thread != nil else { job(self); return }
        mailbox.withLock { $0.append(job) }
        doorbell.signal()
    }

    /// Runs `body` on the data-plane thread between batches and waits for its result. The wait is
    /// one doorbell round trip: the thread answers after at most the batch it is working on.
    public func perform<T>(_ body: @escaping @Sendable (DataPlane) -> T) -> T {
        guard thread != nil else { return body(self) }
        let done = DispatchSemaphore(value: 0)
        let result = ResultSlot<T>()
        post { dp in
            result.value = body(dp)
            done.signal()
        }
        done.wait()
        return result.value!
    }

    /// Stops the thread and waits for it. Ports stay attached; the caller closes them.
    public func stop() {
        guard let t = thread else { return }
        post { dp in dp.running = false }
        t.join()
        thread = nil
    }

    // MARK: - On the data-plane thread

    /// The clock the data plane stamps MAC entries with (CLOCK_MONOTONIC, nanoseconds).
    public func clock() -> UInt64 { SystemCalls.monotonicNanoseconds() }

    /// Attaches `port` and starts polling it. Returns its number, or nil if the switch is full.
    public func attach(_ port: any Port) throws -> PortNumber? {
        guard let n = switching.attach(port) else { return nil }
        let fd = port.readinessDescriptor
        if fd >= 0 {
            do { try epoll.add(fd, token: UInt64(n)) } catch { switching.detach(n); throw error }
        }
        retime(n)
        if let buffering = port as? any BufferingPort { bufferingPorts.append((n, buffering)) }
        return n
    }

    @discardableResult
    public func detach(_ number: PortNumber) -> (any Port)? {
        guard let port = switching.port(number) else { return nil }
        if port.readinessDescriptor >= 0 { epoll.remove(port.readinessDescriptor) }
        timedPorts.removeAll { $0.number == number }
        bufferingPorts.removeAll { $0.number == number }
        return switching.detach(number)
    }

    private func run() {
        guard let batch = pool.makeBatch(capacity: batchCapacity) else { return }
        let sw = switching
        let capacity = batchCapacity
        var lastSweep = SystemCalls.monotonicNanoseconds()
        var lastTreeService = lastSweep
        var timeout: Int32 = 1000
        while running {
            let ready = epoll.wait(timeoutMilliseconds: timeout)
            let now = SystemCalls.monotonicNanoseconds()
            for i in 0..<ready {
                let token = epoll.token(at: i)
                if token == Self.doorbellToken { runJobs(); continue }
                let port = Int(truncatingIfNeeded: token)
                var rounds = 1
                while sw.poll(port, batch: batch, now: now) == capacity && rounds < Self.roundsPerWakeup { rounds += 1 }
            }
            // Input a port read from its device but has not handed over yet no longer makes the
            // fd readable: serve it now, and do not sleep while any is left.
            var holding = false
            for (n, port) in bufferingPorts where port.hasBufferedInput {
                var rounds = 0
                while port.hasBufferedInput && rounds < Self.roundsPerWakeup {
                    _ = sw.poll(n, batch: batch, now: now)
                    rounds += 1
                }
                holding = holding || port.hasBufferedInput
            }
            if now &- lastSweep >= 1_000_000_000 {
                sw.sweep(now: now)
                lastSweep = now
            }
            timeout = timedPorts.isEmpty ? 1000 : serviceTimedPorts(now: SystemCalls.monotonicNanoseconds())
            // The spanning tree polls links and ticks ten times a second (a cut link is noticed
            // within 100 ms); a switch without it sleeps as long as it likes.
            if sw.spanningTreeRuns {
                if now &- lastTreeService >= Self.treeServiceInterval {
                    sw.serviceSpanningTree(now: now)
                    lastTreeService = now
                }
                timeout = min(timeout, Int32(Self.treeServiceInterval / 1_000_000))
            }
            if holding { timeout = 0 }
        }
    }

    /// Serves port `number` between batches while it holds frames (call after changing its
    /// impairment); ports that hold nothing cost the loop nothing.
    public func retime(_ number: PortNumber) {
        timedPorts.removeAll { $0.number == number }
        if let timed = switching.port(number) as? any TimedPort, timed.isTimed { timedPorts.append((number, timed)) }
    }

    /// Sends what impaired ports hold and is due; returns how long epoll may sleep (ms).
    private func serviceTimedPorts(now: UInt64) -> Int32 {
        var next = UInt64.max
        for (n, port) in timedPorts {
            guard let due = port.nextDeadline else { continue }
            if due <= now {
                switching.withCounters(n) { port.service(now: now, counters: $0) }
            }
            if let later = port.nextDeadline { next = min(next, later) }
        }
        if next == .max { return 1000 }
        if next <= now { return 0 }
        return Int32(min(1000, (next - now + 999_999) / 1_000_000))
    }

    private func runJobs() {
        doorbell.drain()
        let jobs = mailbox.withLock { jobs -> [Job] in
            defer { jobs.removeAll(keepingCapacity: true) }
            return jobs
        }
        for job in jobs { job(self) }
    }
}

private final class ResultSlot<T>: @unchecked Sendable { var value: T? }
