import Cluster
import Logging
import SwiftProtobuf
import Synchronization
import Wire

/// The client listener's side: anyone who can reach the port may send. It checks size and
/// framing, refuses every peer-only request with PERMISSION_DENIED (logged at most every 5 s per
/// kind, and counted in `members`), and hands the rest to the ``RequestHandler``.
final class ClientService: Sendable {
    private let handler: RequestHandler
    private let settings: NodeSettings
    private let logger: Logger
    private let refusalLog = RateLimiter(every: .seconds(5))

    init(handler: RequestHandler, settings: NodeSettings, logger: Logger) {
        self.handler = handler
        self.settings = settings
        self.logger = logger
    }

    func handle(_ bytes: [UInt8]) async -> [UInt8] {
        await respond(to: bytes).encoded
    }

    private func respond(to bytes: [UInt8]) async -> Infranaut_V1_Response {
        guard bytes.count <= settings.maxRequestBytes else {
            return .error(
                .tooLarge,
                "request is \(bytes.count) bytes; this node accepts at most \(settings.maxRequestBytes) (--max-request-bytes); send smaller batches"
            )
        }
        if PeerSeal.isSealed(bytes) {
            return refuse(
                "a sealed peer frame",
                reason: "peer frames go to the node's peer listener (--peer-listen), not the client listener")
        }
        return await handler.handle(bytes, from: .client) { request in
            request.peerOnlyReason.map { refuse(request.bodyName, reason: $0) }
        }
    }

    private func refuse(_ what: String, reason: String) -> Infranaut_V1_Response {
        handler.clientRefusals.add(1, ordering: .relaxed)
        if refusalLog.allow(what) {
            logger.warning(
                "refused a peer-only request on the client listener",
                metadata: ["request": "\(what)", "reason": "\(reason)"])
        }
        return .error(.permissionDenied, "\(what) is not accepted on the client endpoint: \(reason)")
    }
}
