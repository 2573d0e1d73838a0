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
        case .raft, .raftSnapshot, .deliverEvent:
            return "\(bodyName) is node-to-node traffic"
        case .leave:
            return "leave changes the cluster and needs the cluster secret (infranaut leave --cluster-secret-file)"
        case .publishEvent:
            return
                "events reach every coordinator (and, with alerting, the people they notify), so publishing needs the cluster secret (infranaut publish-event --cluster-secret-file)"
        case .fault:
            return
                "fault rules cut a node off from its peers and need the cluster secret (infranaut fault --cluster-secret-file)"
        case .backup:
            return
                "a backup writes into the node's data directory and needs the cluster secret (infranaut backup --cluster-secret-file)"
        case .receipts(let receipts) where receipts.local:
            return "receipts.local reads one replica's copy, for peers and drills"
        case .listModels(let list) where list.local:
            return "list_models.local lists one node's shards, for the node that gathers the list"
        case .alerts(let alerts) where alerts.local:
            return "alerts.local lists one node's shards, for the node that gathers the list"
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
        case .raft: "raft"
        case .raftSnapshot: "raft_snapshot"
        case .deliverEvent: "deliver_event"
        case .fault: "fault"
        case .applyModel: "apply_model"
        case .getModel: "get_model"
        case .deleteModel: "delete_model"
        case .listModels: "list_models"
        case .windows: "windows"
        case .compare: "compare"
        case .explain: "explain"
        case .alerts: "alerts"
        case .applyChannel: "apply_channel"
        case .channels: "channels"
        case .silence: "silence"
        case .silences: "silences"
        case .applyDocuments: "apply_documents"
        case .backup: "backup"
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
    let notifier: Notifier
    let metrics: NodeMetrics
    /// Makes a checkpoint of the node's database at a path (nil: this node cannot).
    let takeBackup: (@Sendable (String) async throws -> Void)?
    let inFlight = InFlightBytes()
    let forwards: AdmissionGate
    let forwardedServed: AdmissionGate
    let listings: AdmissionGate
    let clientRefusals = Atomic<UInt64>(0)
    /// Requests dropped because their deadline had passed before they were served.
    let expiredRequests = Atomic<UInt64>(0)

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
        events: EventRelay, notifier: Notifier, settings: NodeSettings, logger: Logger,
        metrics: NodeMetrics = NodeMetrics(), backup: (@Sendable (String) async throws -> Void)? = nil
    ) {
        self.metrics = metrics
        self.takeBackup = backup
        self.events = events
        self.notifier = notifier
        self.router = router
        self.peers = peers
        self.membership = membership
        self.decommission = decommission
        self.settings = settings
        self.logger = logger
        forwards = AdmissionGate(limit: settings.maxForwardsInFlight, maxWaiting: settings.concurrency)
        forwardedServed = AdmissionGate(limit: settings.maxForwardedServed, maxWaiting: 0)
        listings = AdmissionGate(limit: settings.maxListingsInFlight, maxWaiting: 16)
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
        case (.leaving, .leave, .peer), (.leaving, .raft, .peer), (.leaving, .raftSnapshot, .peer),
            (.leaving, .deliverEvent, .peer), (.leaving, .fault, .peer):
            true
        default: false
        }
    }

    /// Sends `request` to the node that leads the model's shard when that is another node, and
    /// returns its answer; `nil` when this node should serve the request itself (it leads, or the
    /// request already travelled twice). A node that does not know the leader sends the request to
    /// the shard's first replica in its placement, which knows it; so a request reaches the leader
    /// in at most two hops, and views that disagree cannot make it loop.
    func forwardIfRemote(
        _ request: Infranaut_V1_Request, bytes: [UInt8], model: String, shard: ShardID, deadline: RequestDeadline
    ) async -> Infranaut_V1_Response? {
        guard request.hops < Self.maxHops else { return nil }
        let target: Member?
        var namedByRaft = false
        switch await router.shard(shard).leadership {
        case .here:
            return nil
        case .elsewhere(let leader?):
            target = await membership.member(leader)
            namedByRaft = true
        case .elsewhere(nil), .notAReplica:
            target = await membership.firstLiveReplica(of: shard)
        }
        guard let target, target.id.rawValue != membership.nodeID, !target.peerAddress.isEmpty else { return nil }
        return await relay(
            request, bytes: bytes, model: model, to: target, namedByRaft: namedByRaft, deadline: deadline)
    }

    /// Forwards `request` to `leader` (a replica that stopped leading learned who leads now), when
    /// the request may travel once more; nil when it may not or no leader is known.
    func forward(
        _ request: Infranaut_V1_Request, bytes: [UInt8], model: String, to leader: NodeID?, deadline: RequestDeadline
    ) async -> Infranaut_V1_Response? {
        guard request.hops < Self.maxHops, let leader, leader.rawValue != membership.nodeID,
            let target = await membership.member(leader), !target.peerAddress.isEmpty
        else { return nil }
        return await relay(request, bytes: bytes, model: model, to: target, namedByRaft: true, deadline: deadline)
    }

    /// Forwards to `target`. A node the shard's Raft replica names as its leader is asked whatever
    /// the membership view says of it (after a partition heals, the view may still call it dead for
    /// seconds while it leads); any other target only while the view sees it alive or suspect.
    private func relay(
        _ request: Infranaut_V1_Request, bytes: [UInt8], model: String, to target: Member, namedByRaft: Bool,
        deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        guard namedByRaft || target.status == .alive || target.status == .suspect else {
            return .error(
                .unavailable,
                "the node to ask about model \(model)'s shard (\(target.id)) is \(target.status); retry shortly")
        }
        // Forwards have their own bounded concurrency: a burst through this node waits here for a
        // slot (briefly, in arrival order) instead of piling requests onto the leader.
        guard await forwards.enter(patience: min(settings.forwardQueueWait, deadline.remaining)) else {
            return .with {
                $0.error = .resourceExhausted(
                    "this node is forwarding \(settings.maxForwardsInFlight) requests to shard leaders already; retry with the same idempotency key",
                    retryAfter: .milliseconds(200))
            }
        }
        defer { forwards.leave() }
        // The leader gets what is left of the time this node waits (the peer call sets it in the
        // frame), and no more than a forward's own timeout.
        let wait = min(settings.forwardTimeout, deadline.remaining)
        guard wait > .zero else { return expired(request, deadline: deadline) }
        // The received frame with `hops` raised (field 2, varint; a later field value wins), so a
        // large batch is not encoded a second time.
        do {
            let reply = try await peers.call(
                encoded: Infranaut_V1_Request.markingForwarded(bytes, hops: request.hops + 1), to: target.peerAddress,
                timeout: wait)
            // The target refused this node's frame (a secret changed, or clocks drifted apart):
            // not the client's doing, and another node or a later try may get through.
            if case .error(let refusal) = reply.body, refusal.code == .permissionDenied {
                logger.warning(
                    "a peer refused a forwarded request",
                    metadata: ["to": "\(target.id)", "reason": "\(refusal.message)"])
                metrics.forward("refused")
                return .error(
                    .unavailable,
                    "\(target.id) refused this node's forward of a request for model \(model) (\(refusal.message)); retry with the same idempotency key"
                )
            }
            metrics.forward(NodeMetrics.outcomeName(reply.outcome.code))
            return reply
        } catch {
            metrics.forward("no_answer")
            logger.debug("forward failed", metadata: ["to": "\(target.id)", "error": "\(error)"])
            return .error(
                .unavailable,
                "no answer from \(target.id) about model \(model)'s shard (\(error)); the request may or may not have been applied; retry with the same idempotency key"
            )
        }
    }

    /// How many times a request may be forwarded: to a replica, then to the leader it knows.
    static let maxHops: UInt32 = 2

    /// Decodes a frame and serves it. Malformed frames, other protocol versions and requests the
    /// node's mode does not admit are answered here; `screen` may refuse a request before that.
    ///
    /// The request's deadline counts from `arrivedAt`, less `transit` (how long a peer's frame was
    /// under way, when its sender's clock is known); a request whose deadline passed is dropped
    /// with DEADLINE_EXCEEDED before any work.
    func handle(
        _ bytes: [UInt8], from caller: Caller, arrivedAt: ContinuousClock.Instant = .now, transit: Duration = .zero,
        screen: (Infranaut_V1_Request) -> Infranaut_V1_Response? = { _ in nil }
    ) async -> Infranaut_V1_Response {
        let request: Infranaut_V1_Request
        do {
            request = try Infranaut_V1_Request(serializedBytes: bytes)
        } catch {
            let refusal = Infranaut_V1_Response.error(
                .invalidArgument, "malformed frame: \(bytes.count) bytes are not an infranaut.v1.Request (\(error))")
            if caller == .client { metrics.client(nil, refusal, elapsed: .now - arrivedAt) }
            return refusal
        }
        let response = await answer(
            request, bytes: bytes, from: caller, arrivedAt: arrivedAt, transit: transit, screen: screen)
        if caller == .client {
            metrics.client(request, response, elapsed: .now - arrivedAt, bytes: bytes.count)
        } else {
            metrics.peer(request, response)
        }
        return response
    }

    /// Whether the node serves client requests (not leaving, not shutting down).
    var servesClients: Bool { mode.withLock { $0 == .serving } }

    private func answer(
        _ request: Infranaut_V1_Request, bytes: [UInt8], from caller: Caller, arrivedAt: ContinuousClock.Instant,
        transit: Duration, screen: (Infranaut_V1_Request) -> Infranaut_V1_Response?
    ) async -> Infranaut_V1_Response {
        guard request.version == 1 else {
            return .error(
                .invalidArgument, "unsupported protocol version \(request.version); this node speaks version 1")
        }
        if let refusal = screen(request) { return refusal }
        guard admits(request, from: caller) else {
            return .error(.unavailable, "the node is shutting down or leaving the cluster; retry against another node")
        }
        let deadline = RequestDeadline(
            timeoutMs: request.timeoutMs, transit: transit, cap: settings.requestTimeout, arrivedAt: arrivedAt)
        guard !deadline.hasPassed else { return expired(request, deadline: deadline, transit: transit) }
        return await respond(to: request, bytes: bytes, from: caller, deadline: deadline)
    }

    /// The answer to a request whose deadline passed before it was served; counted.
    func expired(_ request: Infranaut_V1_Request, deadline: RequestDeadline, transit: Duration = .zero)
        -> Infranaut_V1_Response
    {
        expiredRequests.add(1, ordering: .relaxed)
        let underway = transit > .zero ? " (it was under way for \(transit) before it arrived)" : ""
        return .error(
            .deadlineExceeded,
            "the \(request.bodyName) request's deadline (\(deadline.budget)) passed before it was served\(underway); it was not applied; retry"
        )
    }

    private func respond(
        to request: Infranaut_V1_Request, bytes: [UInt8], from caller: Caller, deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
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
            return await serve(request, bytes: bytes, from: caller, deadline: deadline)
        }
        return await serve(request, bytes: bytes, from: caller, deadline: deadline)
    }

    private func serve(
        _ request: Infranaut_V1_Request, bytes: [UInt8], from caller: Caller, deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        var sender: String? {
            if case .peer(let id) = caller { return id }
            return nil
        }
        switch request.body {
        case .ingest(let ingest):
            return await serveIngest(ingest, request: request, bytes: bytes, deadline: deadline)
        case .status(let status):
            return await serveStatus(status, request: request, bytes: bytes, deadline: deadline)
        case .receipts(let receipts):
            return await serveReceipts(receipts, request: request, bytes: bytes, deadline: deadline)
        case .applyModel(let apply):
            return await serveApplyModel(apply, request: request, bytes: bytes, deadline: deadline)
        case .getModel(let get):
            return await serveGetModel(get, request: request, bytes: bytes, deadline: deadline)
        case .deleteModel(let delete):
            return await serveDeleteModel(delete, request: request, bytes: bytes, deadline: deadline)
        case .listModels(let list):
            return await serveListModels(list, deadline: deadline)
        case .windows(let windows):
            return await serveWindows(windows, request: request, bytes: bytes, deadline: deadline)
        case .compare(let compare):
            return await serveCompare(compare, request: request, bytes: bytes, deadline: deadline)
        case .explain(let explain):
            return await serveExplain(explain, request: request, bytes: bytes, deadline: deadline)
        case .alerts(let alerts):
            return await serveAlerts(alerts, request: request, bytes: bytes, deadline: deadline)
        case .applyChannel(let apply):
            return await serveApplyChannel(apply, deadline: deadline)
        case .channels:
            guard membership.isCoordinator else {
                return .error(.invalidArgument, "node \(membership.nodeID) is not a coordinator; ask one")
            }
            let reply = await notifier.channels()
            return .with { $0.channels = reply }
        case .silence(let silence):
            return await serveSilence(silence, deadline: deadline)
        case .applyDocuments(let apply):
            return await serveApplyDocuments(apply, request: request, deadline: deadline)
        case .backup(let backup):
            let reply = await serveBackup(backup)
            return .with { $0.backup = reply }
        case .silences:
            guard membership.isCoordinator else {
                return .error(.invalidArgument, "node \(membership.nodeID) is not a coordinator; ask one")
            }
            let reply = await notifier.silences(nowMs: Int64(Date().timeIntervalSince1970 * 1000))
            return .with { $0.silences = reply }
        case .members:
            let view = await membership.view
            return .with { $0.members = membersResponse(view) }
        case .ring(let ring):
            let view = await membership.view
            var groups: [ShardGroupView] = []
            for shard in router.shards { groups.append(await shard.group) }
            return .with { $0.ring = ringResponse(view, groups: groups, model: ring.modelID) }
        case .raft(let batch):
            let answer = await receiveRaft(batch, from: sender)
            return .with { $0.raft = answer }
        case .raftSnapshot(let chunk):
            guard let shard = router.shard(number: chunk.shard), let sender else {
                return .error(.invalidArgument, "no shard \(chunk.shard) on this node")
            }
            let answer = await shard.receiveSnapshotChunk(chunk, from: NodeID(sender))
            return .with { $0.raftSnapshot = answer }
        case .publishEvent(let publish):
            let events = self.events
            let reply =
                await withDeadline(deadline.remaining) { await events.publish(publish.event) }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message:
                            "the event was not made durable within its deadline (\(deadline.budget)); it may still be; publish it again"
                    )
                }
            return .with { $0.publishEvent = reply }
        case .events(let list):
            guard list.kinds.count <= 16, list.kinds.allSatisfy({ $0.utf8.count <= 64 }) else {
                return .with {
                    $0.events.status = Infranaut_V1_Status(
                        code: .invalidArgument, message: "kinds: at most 16, each at most 64 bytes")
                }
            }
            let reply = await events.list(
                limit: list.limit == 0 ? 1_000 : Int(min(list.limit, 10_000)), kinds: Set(list.kinds))
            return .with { $0.events = reply }
        case .deliverEvent(let deliver):
            let events = self.events
            let reply =
                await withDeadline(deadline.remaining) { await events.receive(deliver) }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message: "the event was not stored within its deadline (\(deadline.budget))")
                }
            return .with { $0.deliverEvent = reply }
        case .leave:
            let reply = await decommission.leave { self.refuseClients() }
            return .with { $0.leave = reply }
        case .fault(let fault):
            guard case .peer(let admin) = caller else {
                return .error(.permissionDenied, "fault is accepted only on the peer listener")
            }
            return .with { $0.fault = faultResponse(fault, from: admin) }
        case .none:
            return .error(
                .invalidArgument,
                "request has no body (expected ingest, status, receipts, members, ring, publish_event, events, apply_model, get_model, delete_model or list_models)"
            )
        }
    }

    func takingOver(_ model: String) -> Infranaut_V1_Status {
        Infranaut_V1_Status(
            code: .unavailable,
            message:
                "model \(model)'s shard has no leader that can serve a read right now (an election is running, or a majority of its replicas is out of reach); retry shortly"
        )
    }

    /// Hands each Raft message to its shard. Only the node that sealed the frame may speak for
    /// itself: a message claiming another sender is dropped, as are messages for unknown shards.
    private func receiveRaft(_ batch: Infranaut_V1_RaftBatchRequest, from sender: String?) async
        -> Infranaut_V1_RaftBatchResponse
    {
        var dropped: UInt32 = 0
        for item in batch.messages {
            guard let shard = router.shard(number: item.shard), item.message.from == sender,
                let message = try? RaftMessage(wire: item.message)
            else {
                dropped += 1
                continue
            }
            await shard.receive(message)
        }
        return .with { $0.dropped = dropped }
    }

}

extension Infranaut_V1_Request {
    /// Requests a node forwards to a model's primary.
    var forwardable: Bool {
        switch body {
        case .ingest, .status, .applyModel, .getModel, .deleteModel, .windows, .compare, .explain: true
        case .receipts(let receipts): !receipts.local
        case .alerts(let alerts): !alerts.modelID.isEmpty
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
