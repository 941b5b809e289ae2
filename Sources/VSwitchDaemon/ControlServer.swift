import Foundation
import Logging
import NIOCore
import NIOPosix
import VSwitchControl

/// The control socket: a Unix stream socket (mode 0660) speaking newline-delimited JSON-RPC 2.0.
/// NIO reads and frames the lines; each request is answered on the control queue, where the
/// `SwitchService` lives, and the reply is written back in order.
public final class ControlServer: @unchecked Sendable {
    /// Longest request line accepted; a longer one gets an error and the connection is closed.
    public static let maxLineLength = 1 << 20

    let path: String
    let service: SwitchService
    let queue: DispatchQueue
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    private var channel: Channel?

    public init(path: String, service: SwitchService, queue: DispatchQueue, logger: Logger) {
        self.path = path
        self.service = service
        self.queue = queue
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    public func start() throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        // A stale socket file is replaced; a live daemon's never is.
        if FileManager.default.fileExists(atPath: path),
           (try? ControlClient(path: path, timeout: 2).call(.listBridges, EmptyParams(), as: BridgeList.self)) != nil {
            throw ControlServerError("another vswitchd is already serving \(path)")
        }
        let service = self.service, queue = self.queue, logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maxLength: Self.maxLineLength)))
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(service: service, queue: queue, logger: logger))
                }
            }
        channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        chmod(path, 0o660)
    }

    public func stop() {
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
        unlink(path)
    }
}

/// Splits the byte stream into lines; a line over `maxLength` is an error.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let maxLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let nl = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = nl - buffer.readerIndex
            let line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            context.fireChannelRead(Self.wrapInboundOut(line))
            return .continue
        }
        if buffer.readableBytes > maxLength { throw LineTooLong() }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A last request without its newline is still answered.
        if buffer.readableBytes > 0, try decode(context: context, buffer: &buffer) == .needMoreData {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(Self.wrapInboundOut(line))
        }
        return .needMoreData
    }
}

struct LineTooLong: Error {}

public struct ControlServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

final class RequestHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let service: SwitchService
    let queue: DispatchQueue
    let logger: Logger

    init(service: SwitchService, queue: DispatchQueue, logger: Logger) {
        self.service = service
        self.queue = queue
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let line = Data(buffer.readBytes(length: buffer.readableBytes) ?? [])
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }  // blank lines are ignored
        let channel = context.channel
        let service = self.service
        queue.async {
            var reply = service.handle(line)
            reply.append(UInt8(ascii: "\n"))
            let bytes = reply
            channel.eventLoop.execute {
                channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is LineTooLong || error is ByteToMessageDecoderError {
            var reply = JSONRPC.encodeError(id: .null, .init(code: .invalidRequest, message: "request line longer than \(ControlServer.maxLineLength) bytes"))
            reply.append(UInt8(ascii: "\n"))
            let channel = context.channel
            channel.writeAndFlush(channel.allocator.buffer(bytes: reply)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.close(promise: nil)
    }
}
