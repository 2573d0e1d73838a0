import Cluster
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Wire

/// Who sent a request: decided by the listener it arrived on, never by the request itself.
enum Caller: Sendable, Equatable {
    /// Anyone who can reach the client listener.
    case client
    /// A holder of the cluster secret (a peer node or an admin command), by its sealed sender id.
    case peer(String)
}

extension Infranaut_V1_Request {
    /// Why a client may not send this request; nil when it may. Peer-only requests change the
    /// cluster or a replica's state below the shard's own checks (replication, snapshots,
    /// hand-off, event delivery, leave), or ask a node to skip forwarding (`hops`, local receipts).
    var peerOnlyReason: String? {
        if hops > 0 { return "hops is set only by a node that forwards a request" }
        switch body {
        case .replicate, .installSnapshot, .fetchSnapshot, .handOff, .deliverEvent:
            return "\(bodyName) is node-to-node traffic"
        case .leave:
            return "leave changes the cluster and needs the cluster secret (infranaut leave --cluster-secret-file)"
        case .publishEvent:
            return
                "events reach every coordinator (and, with alerting, the people they notify), so publishing needs the cluster secret (infranaut publish-event --cluster-secret-file)"
        case .fault:
            return
                "fault rules cut a node off from its peers and need the cluster secret (infranaut fault --cluster-secret-file)"
        case .receipts(let receipts) where receipts.local:
            return "receipts.local reads one replica's copy, for peers and drills"
        default:
            return nil
        }
    }

    var bodyName: String {
        switch body {
        case .ingest: "ingest"
        case .status: "status"
        case .members: "members"
        case .ring: "ring"
        case .receipts: "receipts"
        case .leave: "leave"
        case .publishEvent: "publish_event"
        case .events: "events"
        case .replicate: "replicate"
        case .installSnapshot: "install_snapshot"
        case .fetchSnapshot: "fetch_snapshot"
        case .handOff: "hand_off"
        case .deliverEvent: "deliver_event"
        case .fault: "fault"
        case .none: "no body"
        }
    }
}

/// Serves a decoded request for either listener: routes it to the model's shard (forwarding to
/// the primary on another node when needed), or answers the admin and peer requests. The
/// listeners decide who may send what (``ClientService``, ``PeerService``); this type decides
/// what the node does.
///
/// Every failure becomes a `Response` with a status code and a message naming what was wrong; it
/// never drops a request silently and never throws to the transport.
///
/// As a ServiceLifecycle service it only waits: when the node shuts down it starts draining.
final class RequestHandler: Service {
    let router: Router
    let membership: MembershipService
    let settings: NodeSettings
    let logger: Logger
    let peers: PeerClients
    let decommission: Decommission
    let events: EventRelay
    let inFlight = InFlightBytes()
    let forwards: AdmissionGate
    let forwardedServed: AdmissionGate
    let clientRefusals = Atomic<UInt64>(0)

    /// What the node still serves.
    enum Mode {
        case serving
        /// `leave` in progress: no client requests; peers' requests (replication, hand-off, event
        /// delivery), `members` and `ring` are still answered, and `leave` may be asked again.
        case leaving
        /// Shutting down: only the admin views.
        case stopping
    }

    private let mode = Mutex(Mode.serving)

    init(
        router: Router, membership: MembershipService, peers: PeerClients, decommission: Decommission,
        events: EventRelay, settings: NodeSettings, logger: Logger
    ) {
        self.events = events
        self.router = router
        self.peers = peers
        self.membership = membership
        self.decommission = decommission
        self.settings = settings
        self.logger = logger
        forwards = AdmissionGate(limit: settings.maxForwardsInFlight, maxWaiting: settings.concurrency)
        forwardedServed = AdmissionGate(limit: settings.maxForwardedServed, maxWaiting: 0)
    }

    /// Serves until the node shuts down, then starts draining.
    func run() async {
        try? await gracefulShutdown()
        startDraining()
    }

    /// From now on, answer every request but `members` and `ring` with a retryable UNAVAILABLE,
    /// and close the peer clients.
    func startDraining() {
        mode.withLock { $0 = .stopping }
        peers.closeAll()
    }

    /// Like ``startDraining()`` for clients, but this node keeps its peer clients and keeps
    /// answering its peers (a leave in progress still hands shards off).
    private func refuseClients() {
        mode.withLock { if $0 == .serving { $0 = .leaving } }
    }

    /// Whether the node in its current mode serves `request` from `caller`.
    private func admits(_ request: Infranaut_V1_Request, from caller: Caller) -> Bool {
        switch (mode.withLock({ $0 }), request.body, caller) {
        case (.serving, _, _), (_, .members, _), (_, .ring, _): true
        case (.leaving, .leave, .peer), (.leaving, .replicate, .peer), (.leaving, .installSnapshot, .peer),
            (.leaving, .fetchSnapshot, .peer), (.leaving, .handOff, .peer), (.leaving, .deliverEvent, .peer),
            (.leaving, .fault, .peer):
            true
        default: false
        }
    }

    /// Sends `request` to the model's primary when that is another live node, and returns its
    /// answer; `nil` when this node should serve the request itself. A forwarded request carries
    /// `hops = 1` and is served where it arrives, so views that disagree cannot make it loop.
    func forwardIfRemote(
        _ request: Infranaut_V1_Request, bytes: [UInt8], model: String, shard: ShardID
    ) async -> Infranaut_V1_Response? {
        guard request.hops == 0, let primary = await membership.primary(of: shard),
            primary.id.rawValue != membership.nodeID, !primary.peerAddress.isEmpty
        else { return nil }
        guard primary.status == .alive else {
            return .error(
                .unavailable,
                "the primary of model \(model)'s shard (\(primary.id)) is \(primary.status); retry shortly")
        }
        // Forwards have their own bounded concurrency: a burst through this node waits here for a
        // slot (briefly, in arrival order) instead of piling requests onto the primary.
        guard await forwards.enter(patience: settings.forwardQueueWait) else {
            return .with {
                $0.error = .resourceExhausted(
                    "this node is forwarding \(settings.maxForwardsInFlight) requests to primaries already; retry with the same idempotency key",
                    retryAfter: .milliseconds(200))
            }
        }
        defer { forwards.leave() }
        // The received frame with `hops = 1` appended (field 2, varint; a later field value wins),
        // so a large batch is not encoded a second time.
        do {
            let reply = try await peers.call(
                encoded: Infranaut_V1_Request.markingForwarded(bytes), to: primary.peerAddress,
                timeout: settings.forwardTimeout)
            // The primary refused this node's frame (a secret changed, or clocks drifted apart):
            // not the client's doing, and another node or a later try may get through.
            if case .error(let refusal) = reply.body, refusal.code == .permissionDenied {
                logger.warning(
                    "the primary refused a forwarded request",
                    metadata: ["to": "\(primary.id)", "reason": "\(refusal.message)"])
                return .error(
                    .unavailable,
                    "\(primary.id), the primary of model \(model)'s shard, refused this node's forward (\(refusal.message)); retry with the same idempotency key"
                )
            }
            return reply
        } catch {
            logger.debug("forward failed", metadata: ["to": "\(primary.id)", "error": "\(error)"])
            return .error(
                .unavailable,
                "no answer from \(primary.id), the primary of model \(model)'s shard (\(error)); the request may or may not have been applied; retry with the same idempotency key"
            )
        }
    }

    /// Decodes a frame and serves it. Malformed frames, other protocol versions and requests the
    /// node's mode does not admit are answered here; `screen` may refuse a request before that.
    func handle(
        _ bytes: [UInt8], from caller: Caller, screen: (Infranaut_V1_Request) -> Infranaut_V1_Response? = { _ in nil }
    ) async -> Infranaut_V1_Response {
        let request: Infranaut_V1_Request
        do {
            request = try Infranaut_V1_Request(serializedBytes: bytes)
        } catch {
            return .error(
                .invalidArgument, "malformed frame: \(bytes.count) bytes are not an infranaut.v1.Request (\(error))")
        }
        guard request.version == 1 else {
            return .error(
                .invalidArgument, "unsupported protocol version \(request.version); this node speaks version 1")
        }
        if let refusal = screen(request) { return refusal }
        guard admits(request, from: caller) else {
            return .error(.unavailable, "the node is shutting down or leaving the cluster; retry against another node")
        }
        return await respond(to: request, bytes: bytes, from: caller)
    }

    private func respond(to request: Infranaut_V1_Request, bytes: [UInt8], from caller: Caller) async
        -> Infranaut_V1_Response
    {
        // A forwarded request holds a peer context until it is served; cap how many, so forwards
        // from every other node together can never take the contexts replication needs.
        if request.hops > 0, case .peer = caller, request.forwardable {
            guard forwardedServed.tryEnter() else {
                return .with {
                    $0.error = .resourceExhausted(
                        "this node serves \(settings.maxForwardedServed) forwarded requests already; retry with the same idempotency key",
                        retryAfter: .milliseconds(100))
                }
            }
            defer { forwardedServed.leave() }
            return await serve(request, bytes: bytes, from: caller)
        }
        return await serve(request, bytes: bytes, from: caller)
    }

    private func serve(_ request: Infranaut_V1_Request, bytes: [UInt8], from caller: Caller) async
        -> Infranaut_V1_Response
    {
        switch request.body {
        case .ingest(let ingest):
            return await serveIngest(ingest, request: request, bytes: bytes)
        case .status(let status):
            return await serveStatus(status, request: request, bytes: bytes)
        case .receipts(let receipts):
            return await serveReceipts(receipts, request: request, bytes: bytes)
        case .members:
            let view = await membership.view
            return .with { $0.members = membersResponse(view) }
        case .ring(let ring):
            let view = await membership.view
            var terms: [UInt64] = []
            for shard in router.shards { terms.append(await shard.promisedTerm) }
            return .with { $0.ring = ringResponse(view, terms: terms, model: ring.modelID) }
        case .replicate(let replicate):
            guard let shard = router.shard(number: replicate.shard) else {
                return .error(.invalidArgument, "no shard \(replicate.shard) on this node")
            }
            let reply = await shard.receiveReplicate(replicate)
            return .with { $0.replicate = reply }
        case .installSnapshot(let install):
            guard let shard = router.shard(number: install.snapshot.shard) else {
                return .error(.invalidArgument, "no shard \(install.snapshot.shard) on this node")
            }
            let reply = await shard.receiveSnapshot(install)
            return .with { $0.installSnapshot = reply }
        case .fetchSnapshot(let fetch):
            guard let shard = router.shard(number: fetch.shard) else {
                return .error(.invalidArgument, "no shard \(fetch.shard) on this node")
            }
            let reply = await shard.snapshotForPeer()
            return .with { $0.fetchSnapshot = reply }
        case .publishEvent(let publish):
            let events = self.events
            let reply =
                await withDeadline(settings.requestTimeout) { await events.publish(publish.event) }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message:
                            "the event was not made durable within \(settings.requestTimeout); it may still be; publish it again"
                    )
                }
            return .with { $0.publishEvent = reply }
        case .events(let list):
            let reply = await events.list(limit: list.limit == 0 ? 1_000 : Int(min(list.limit, 10_000)))
            return .with { $0.events = reply }
        case .deliverEvent(let deliver):
            let events = self.events
            let reply =
                await withDeadline(settings.requestTimeout) { await events.receive(deliver) }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded, message: "the event was not stored within \(settings.requestTimeout)")
                }
            return .with { $0.deliverEvent = reply }
        case .leave:
            let reply = await decommission.leave { self.refuseClients() }
            return .with { $0.leave = reply }
        case .fault(let fault):
            guard case .peer(let sender) = caller else {
                return .error(.permissionDenied, "fault is accepted only on the peer listener")
            }
            return .with { $0.fault = faultResponse(fault, from: sender) }
        case .handOff(let handOff):
            guard let shard = router.shard(number: handOff.shard) else {
                return .error(.invalidArgument, "no shard \(handOff.shard) on this node")
            }
            let reply = await shard.handOff(handOff, timeout: Decommission.perShardTimeout)
            return .with { $0.handOff = reply }
        case .none:
            return .error(
                .invalidArgument,
                "request has no body (expected ingest, status, receipts, members, ring, publish_event or events)")
        }
    }

    func takingOver(_ model: String) -> Infranaut_V1_Status {
        Infranaut_V1_Status(
            code: .unavailable,
            message:
                "model \(model)'s shard is taking over as primary here and could not reach its followers yet; retry shortly"
        )
    }

}

extension Infranaut_V1_Request {
    /// Requests a node forwards to a model's primary.
    var forwardable: Bool {
        switch body {
        case .ingest, .status: true
        case .receipts(let receipts): !receipts.local
        default: false
        }
    }
}

extension Infranaut_V1_Response {
    /// The bytes of the answer (an encoding failure, which a built message cannot have, sends none).
    var encoded: [UInt8] { (try? serializedBytes()) ?? [] }

    static func error(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_Response {
        .with { $0.error = Infranaut_V1_Status(code: code, message: message) }
    }
}
