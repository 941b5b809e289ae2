// vswitchd: the vswitch daemon. A thin executable: options in, `Daemon` out.
import ArgumentParser
import Logging
import VSwitchControl
import VSwitchDaemon
import Foundation

struct VSwitchd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vswitchd",
        abstract: "The vswitch daemon: runs switches and serves the control socket.",
        discussion: "Runs in the foreground and logs to stderr. See vswitchd(8) in Docs/man.")

    @Option(help: ArgumentHelp("Control socket path (env VSWITCH_SOCKET).", valueName: "PATH"))
    var socket: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("State directory (env VSWITCH_STATE_DIR).", valueName: "DIR"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Daemon config file (reserved; not read yet).", valueName: "FILE"))
    var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: ArgumentHelp("Serve Prometheus metrics over HTTP at ADDR:PORT/metrics.", valueName: "ADDR:PORT"))
    var metrics: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("invalid --log-level \(logLevel)") }
        if let m = metrics, MetricsServer.parse(m) == nil { throw ValidationError("invalid --metrics \(m) (ADDR:PORT, e.g. 127.0.0.1:9417)") }
    }

    func run() throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let env = ProcessInfo.processInfo.environment
        let options = Daemon.Options(
            socketPath: ControlSocket.path(flag: socket, environment: env),
            stateDirectory: stateDir ?? env["VSWITCH_STATE_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? Daemon.defaultStateDirectory,
            logLevel: Logger.Level(rawValue: logLevel)!,
            metrics: metrics.flatMap(MetricsServer.parse))
        Daemon(options: options).run()
    }
}

VSwitchd.main()
