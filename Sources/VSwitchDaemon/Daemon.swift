import Foundation
import Logging
import VSwitchControl

/// vswitchd as a whole: restores state, serves the control socket, and on SIGTERM/SIGINT stops
/// every switch (removing the TAPs it created), removes the socket and exits 0. The state file
/// is kept, so the next start restores the same switches.
public final class Daemon: @unchecked Sendable {
    public struct Options: Sendable {
        public var socketPath: String
        public var stateDirectory: String
        public var logLevel: Logger.Level
        /// `--metrics ADDR:PORT`, if given.
        public var metrics: (host: String, port: Int)?
        public init(socketPath: String, stateDirectory: String, logLevel: Logger.Level, metrics: (host: String, port: Int)? = nil) {
            self.socketPath = socketPath; self.stateDirectory = stateDirectory; self.logLevel = logLevel; self.metrics = metrics
        }
    }

    public static let defaultStateDirectory = "/var/lib/vswitch"

    let options: Options
    let logger: Logger
    let queue = DispatchQueue(label: "vswitchd.control")
    let service: SwitchService
    let server: ControlServer
    let metricsServer: MetricsServer?
    private var signalSources: [DispatchSourceSignal] = []
    private var vmGeneration: VMGenerationMonitor?

    public init(options: Options) {
        self.options = options
        var logger = Logger(label: "vswitchd")
        logger.logLevel = options.logLevel
        self.logger = logger
        service = SwitchService(store: StateStore(directory: options.stateDirectory), logger: logger)
        service.queue = queue
        server = ControlServer(path: options.socketPath, service: service, queue: queue, logger: logger)
        let service = self.service, queue = self.queue
        metricsServer = options.metrics.map { MetricsServer(host: $0.host, port: $0.port, service: service, queue: queue) }
    }

    /// Runs until a signal stops the daemon; exits the process.
    public func run() -> Never {
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .main)
            source.setEventHandler { [self] in stop(signal: sig) }
            source.resume()
            signalSources.append(source)
        }
        // SIGHUP reads the key files of secure tunnels again (key rotation).
        signal(SIGHUP, SIG_IGN)
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: queue)
        hup.setEventHandler { [service] in service.reloadKeys() }
        hup.resume()
        signalSources.append(hup)
        signal(SIGPIPE, SIG_IGN)
        // A VM restored from a snapshot (or cloned): secure sessions must not seal again.
        vmGeneration = VMGenerationMonitor(queue: queue) { [service] in
            service.forgetSecureSessions(reason: "the kernel reports a new VM generation (restored snapshot or clone)")
        }
        if vmGeneration == nil { logger.warning("cannot watch kernel uevents: VM snapshot restores will not end secure sessions") }
        logger.info("vswitchd starting: socket \(options.socketPath), state \(options.stateDirectory)")
        queue.sync {
            service.restore()
            service.startMoveLogging()
        }
        do {
            try server.start()
        } catch {
            logger.critical("cannot listen on \(options.socketPath): \(error)")
            queue.sync { service.shutdown() }
            exit(1)
        }
        if let metrics = metricsServer {
            do { try metrics.start() } catch {
                logger.critical("cannot serve metrics on \(metrics.host):\(metrics.port): \(error)")
                server.stop()
                queue.sync { service.shutdown() }
                exit(1)
            }
            logger.info("metrics at http://\(metrics.host):\(metrics.port)/metrics")
        }
        logger.info("vswitchd ready")
        dispatchMain()
    }

    private func stop(signal: Int32) {
        logger.info("vswitchd stopping (signal \(signal))")
        server.stop()
        metricsServer?.stop()
        queue.sync { service.shutdown() }
        logger.info("vswitchd stopped")
        exit(0)
    }
}
