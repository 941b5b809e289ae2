import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// `--metrics ADDR:PORT`: Prometheus text format over HTTP at `/metrics` (anything else is 404).
/// Each scrape is answered on the control queue, from a fresh snapshot of every switch.
public final class MetricsServer: @unchecked Sendable {
    let host: String
    let port: Int
    let service: SwitchService
    let queue: DispatchQueue
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: Channel?

    /// Parses `ADDR:PORT` (`[v6]:PORT` for IPv6).
    public static func parse(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    public init(host: String, port: Int, service: SwitchService, queue: DispatchQueue) {
        self.host = host
        self.port = port
        self.service = service
        self.queue = queue
    }

    public func start() throws {
        let service = self.service, queue = self.queue
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(MetricsHandler(service: service, queue: queue))
                }
            }
        channel = try bootstrap.bind(host: host, port: port).wait()
    }

    public func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let service: SwitchService
    let queue: DispatchQueue
    private var head: HTTPRequestHead?

    init(service: SwitchService, queue: DispatchQueue) {
        self.service = service
        self.queue = queue
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            let channel = context.channel
            let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
            let keepAlive = h.isKeepAlive
            let version = h.version
            if h.method != .GET || path != "/metrics" {
                Self.respond(channel, version: version, status: .notFound, type: "text/plain", body: "not found: try /metrics\n", keepAlive: keepAlive)
                return
            }
            let service = self.service
            queue.async {
                let text = service.metricsText()
                Self.respond(channel, version: version, status: .ok, type: "text/plain; version=0.0.4; charset=utf-8", body: text, keepAlive: keepAlive)
            }
        }
    }

    static func respond(_ channel: Channel, version: HTTPVersion, status: HTTPResponseStatus, type: String, body: String, keepAlive: Bool) {
        channel.eventLoop.execute {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            channel.write(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: headers)), promise: nil)
            channel.write(HTTPServerResponsePart.body(.byteBuffer(channel.allocator.buffer(string: body))), promise: nil)
            channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in
                if !keepAlive { channel.close(promise: nil) }
            }
        }
    }
}
