public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A real HTTP listener on loopback that keeps every request it gets (path, headers, body, when
/// it arrived) and answers 500 to the first `failFirst` of them, 200 to the rest: the receiving
/// end of notifications in the tests and the alert benchmark.
public final class HTTPReceiver: @unchecked Sendable {
    public struct Request: Sendable {
        public var path: String
        public var headers: [String: String]
        public var body: Data
        public var answered: Int
        public var arrived: ContinuousClock.Instant

        public var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
    }

    private let lock = NSLock()
    private var kept: [Request] = []
    private var failuresLeft: Int
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: (any Channel)?
    public private(set) var port = 0

    public init(failFirst: Int = 0) throws {
        failuresLeft = failFirst
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(receiver: self))
                }
            }
        let bound = try bootstrap.bind(host: "127.0.0.1", port: 0).wait()
        channel = bound
        port = bound.localAddress?.port ?? 0
    }

    public var url: String { "http://127.0.0.1:\(port)/hook" }

    public var requests: [Request] { lock.withLock { kept } }

    /// Requests answered 2xx.
    public var accepted: [Request] { requests.filter { $0.answered == 200 } }

    fileprivate func take(path: String, headers: HTTPHeaders, body: Data) -> Int {
        lock.withLock {
            let status = failuresLeft > 0 ? 500 : 200
            if failuresLeft > 0 { failuresLeft -= 1 }
            var names: [String: String] = [:]
            for (name, value) in headers { names[name.lowercased()] = value }
            kept.append(Request(path: path, headers: names, body: body, answered: status, arrived: .now))
            return status
        }
    }

    private var closed = false

    /// Stops listening; later calls do nothing.
    public func close() {
        let first = lock.withLock {
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let receiver: HTTPReceiver
        var head: HTTPRequestHead?
        var body = Data()

        init(receiver: HTTPReceiver) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                head = h
                body = Data()
            case .body(var buffer):
                if let bytes = buffer.readBytes(length: buffer.readableBytes) { body.append(contentsOf: bytes) }
            case .end:
                let status = receiver.take(path: head?.uri ?? "", headers: head?.headers ?? [:], body: body)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "0")
                let response = HTTPResponseHead(
                    version: head?.version ?? .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers
                )
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
