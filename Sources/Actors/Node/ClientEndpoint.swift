import Cluster
import Foundation
import Logging
import SwiftProtobuf
import Synchronization
import Wire

/// Decodes client frames, checks them, routes them to shards, and encodes the answer.
///
/// Every failure becomes a `Response` with a status code and a message naming what was wrong; the
/// endpoint never drops a request silently and never throws to the transport.
final class ClientEndpoint: Sendable {
    private let router: Router
    private let membership: MembershipService
    private let settings: NodeSettings
    private let logger: Logger
    /// What the endpoint still serves.
    private enum Mode {
        case serving
        /// `leave` in progress: no client requests; peers' requests (replication, hand-off, event
        /// delivery), `members` and `ring` are still answered, and `leave` may be asked again.
        case leaving
        /// Shutting down: only the admin views.
        case stopping
    }

    private let mode = Mutex(Mode.serving)

    private let forwarder: Forwarder
    private let decommission: Decommission
    private let events: EventRelay
    private let inFlight = InFlightBytes()

    /// `forwarder` holds the clients to peer nodes; the endpoint closes it when it starts draining.
    init(
        router: Router, membership: MembershipService, forwarder: Forwarder, decommission: Decommission,
        events: EventRelay, settings: NodeSettings, logger: Logger
    ) {
        self.events = events
        self.router = router
        self.forwarder = forwarder
        self.membership = membership
        self.decommission = decommission
        self.settings = settings
        self.logger = logger
    }

    /// From now on, answer every request but `members` and `ring` with a retryable UNAVAILABLE.
    func startDraining() {
        mode.withLock { $0 = .stopping }
        forwarder.closeAll()
    }

    /// Like ``startDraining()`` for clients, but this node keeps its peer clients and keeps
    /// answering its peers (a leave in progress still hands shards off).
    private func refuseClients() {
        mode.withLock { if $0 == .serving { $0 = .leaving } }
    }

    private func admitted(_ body: Infranaut_V1_Request.OneOf_Body?, in mode: Mode) -> Bool {
        switch (mode, body) {
        case (.serving, _), (_, .members), (_, .ring): true
        case (.leaving, .leave), (.leaving, .replicate), (.leaving, .installSnapshot), (.leaving, .fetchSnapshot),
             (.leaving, .handOff), (.leaving, .deliverEvent): true
        default: false
        }
    }

    /// Sends `request` to the model's primary when that is another live node, and returns its
    /// answer; `nil` when this node should serve the request itself. A forwarded request carries
    /// `hops = 1` and is served where it arrives, so views that disagree cannot make it loop.
    private func forwardIfRemote(_ request: Infranaut_V1_Request, bytes: [UInt8], model: String) async -> Infranaut_V1_Response? {
        guard request.hops == 0, let primary = await membership.primary(forModel: model),
              primary.id.rawValue != membership.nodeID, !primary.clientAddress.isEmpty
        else { return nil }
        guard primary.status == .alive else {
            return .error(.unavailable, "the primary of model \(model)'s shard (\(primary.id)) is \(primary.status); retry shortly")
        }
        // The received frame with `hops = 1` appended (field 2, varint; a later field value wins),
        // so a large batch is not encoded a second time.
        let forwarded = bytes + [0x10, 0x01]
        do {
            let client = try forwarder.client(for: primary.clientAddress)
            let reply = try await client.request(forwarded, timeout: settings.forwardTimeout)
            return try Infranaut_V1_Response(serializedBytes: reply)
        } catch {
            logger.debug("forward failed", metadata: ["to": "\(primary.id)", "error": "\(error)"])
            return .error(.unavailable, "could not reach \(primary.id), the primary of model \(model)'s shard (\(error)); retry with the same idempotency key")
        }
    }

    func handle(_ bytes: [UInt8]) async -> [UInt8] {
        encode(await respond(to: bytes))
    }

    private func respond(to bytes: [UInt8]) async -> Infranaut_V1_Response {
        // 64 bytes of headroom, for node-to-node requests only: forwarding adds the `hops` field to
        // a request a client sent at the limit.
        let tooLarge = Infranaut_V1_Response.error(
            .tooLarge, "request is \(bytes.count) bytes; this node accepts at most \(settings.maxRequestBytes) (--max-request-bytes); send smaller batches")
        guard bytes.count <= settings.maxRequestBytes + 64 else { return tooLarge }
        let request: Infranaut_V1_Request
        do {
            request = try Infranaut_V1_Request(serializedBytes: bytes)
        } catch {
            return .error(.invalidArgument, "malformed frame: \(bytes.count) bytes are not an infranaut.v1.Request (\(error))")
        }
        if !admitted(request.body, in: mode.withLock({ $0 })) {
            return .error(.unavailable, "the node is shutting down or leaving the cluster; retry against another node")
        }
        guard request.hops > 0 || bytes.count <= settings.maxRequestBytes else { return tooLarge }
        guard request.version == 1 else {
            return .error(.invalidArgument, "unsupported protocol version \(request.version); this node speaks version 1")
        }
        switch request.body {
        case .ingest(let ingest):
            do throws(WireError) {
                try ingest.validate(settings.limits)
            } catch {
                return .with { $0.ingest = .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) } }
            }
            if let relayed = await forwardIfRemote(request, bytes: bytes, model: ingest.batch.modelID) { return relayed }
            guard membership.seesMajority else {
                return .with {
                    $0.ingest = .with {
                        $0.status = Infranaut_V1_Status(
                            code: .unavailable,
                            message: "this node cannot see a majority of the cluster's members (it may be on the minority side of a partition); it refuses writes until it does; retry, or send to another node")
                    }
                }
            }
            // Back-pressure: an ingest that outlives its deadline keeps its batch in memory until it
            // is durable, so bound the bytes of ingests in progress and shed load above that.
            let size = bytes.count
            guard inFlight.admit(size, limit: settings.maxInFlightIngestBytes) else {
                return .with {
                    $0.ingest = .with {
                        $0.status = Infranaut_V1_Status(
                            code: .unavailable,
                            message: "the node is overloaded (\(settings.maxInFlightIngestBytes >> 20) MiB of batches in progress); retry with the same idempotency key after a short pause")
                    }
                }
            }
            let shard = router.shard(for: ingest.batch.modelID)
            let inFlight = self.inFlight
            let outcome = await withDeadline(settings.requestTimeout) {
                let response = await shard.ingest(ingest)
                inFlight.release(size)
                return response
            }
            let response = outcome ?? .with {
                $0.status = Infranaut_V1_Status(
                    code: .deadlineExceeded,
                    message: "the batch was not applied within \(settings.requestTimeout); it may still be; retry with the same idempotency key")
            }
            return .with { $0.ingest = response }
        case .status(let status):
            guard !status.modelID.isEmpty else {
                return .with { $0.status = .with { $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "status.model_id is empty") } }
            }
            if let relayed = await forwardIfRemote(request, bytes: bytes, model: status.modelID) { return relayed }
            let shard = router.shard(for: status.modelID)
            guard await shard.readyForReads() else { return .with { $0.status = .with { $0.status = takingOver(status.modelID) } } }
            guard let model = await shard.status(model: status.modelID) else {
                return .with {
                    $0.status = .with {
                        $0.status = Infranaut_V1_Status(code: .notFound, message: "model \"\(status.modelID)\" has no telemetry on this node")
                    }
                }
            }
            return .with { $0.status = .with { $0.status = .ok; $0.model = model } }
        case .receipts(let receipts):
            do throws(WireError) {
                try receipts.validate(settings.limits)
            } catch {
                return .with { $0.receipts = .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) } }
            }
            if !receipts.local, let relayed = await forwardIfRemote(request, bytes: bytes, model: receipts.modelID) { return relayed }
            let shard = router.shard(for: receipts.modelID)
            let ready = receipts.local ? true : await shard.readyForReads()
            guard ready else { return .with { $0.receipts = .with { $0.status = takingOver(receipts.modelID) } } }
            let reply = await shard.receipts(model: receipts.modelID, keys: receipts.idempotencyKeys)
            return .with { $0.receipts = reply }
        case .members:
            let view = await membership.view
            return .with { $0.members = membersResponse(view) }
        case .ring(let ring):
            let view = await membership.view
            var terms: [UInt64] = []
            for shard in router.shards { terms.append(await shard.promisedTerm) }
            return .with { $0.ring = ringResponse(view, terms: terms, model: ring.modelID) }
        case .replicate(let replicate):
            guard let shard = router.shard(number: replicate.shard) else { return .error(.invalidArgument, "no shard \(replicate.shard) on this node") }
            let reply = await shard.receiveReplicate(replicate)
            return .with { $0.replicate = reply }
        case .installSnapshot(let install):
            guard let shard = router.shard(number: install.snapshot.shard) else { return .error(.invalidArgument, "no shard \(install.snapshot.shard) on this node") }
            let reply = await shard.receiveSnapshot(install)
            return .with { $0.installSnapshot = reply }
        case .fetchSnapshot(let fetch):
            guard let shard = router.shard(number: fetch.shard) else { return .error(.invalidArgument, "no shard \(fetch.shard) on this node") }
            let reply = await shard.snapshotForPeer()
            return .with { $0.fetchSnapshot = reply }
        case .publishEvent(let publish):
            let events = self.events
            let reply = await withDeadline(settings.requestTimeout) { await events.publish(publish.event) } ?? .with {
                $0.status = Infranaut_V1_Status(
                    code: .deadlineExceeded, message: "the event was not made durable within \(settings.requestTimeout); it may still be; publish it again")
            }
            return .with { $0.publishEvent = reply }
        case .events(let list):
            let reply = await events.list(limit: list.limit == 0 ? 1_000 : Int(min(list.limit, 10_000)))
            return .with { $0.events = reply }
        case .deliverEvent(let deliver):
            let events = self.events
            let reply = await withDeadline(settings.requestTimeout) { await events.receive(deliver) } ?? .with {
                $0.status = Infranaut_V1_Status(code: .deadlineExceeded, message: "the event was not stored within \(settings.requestTimeout)")
            }
            return .with { $0.deliverEvent = reply }
        case .leave:
            let reply = await decommission.leave { self.refuseClients() }
            return .with { $0.leave = reply }
        case .handOff(let handOff):
            guard let shard = router.shard(number: handOff.shard) else { return .error(.invalidArgument, "no shard \(handOff.shard) on this node") }
            let reply = await shard.handOff(handOff, timeout: Decommission.perShardTimeout)
            return .with { $0.handOff = reply }
        case .none:
            return .error(.invalidArgument, "request has no body (expected ingest, status, receipts, members or ring)")
        }
    }

    private func takingOver(_ model: String) -> Infranaut_V1_Status {
        Infranaut_V1_Status(
            code: .unavailable,
            message: "model \(model)'s shard is taking over as primary here and could not reach its followers yet; retry shortly")
    }

    private func membersResponse(_ view: MembershipView) -> Infranaut_V1_MembersResponse {
        .with {
            $0.status = .ok
            $0.selfID = view.myself.id.rawValue
            $0.shardCount = UInt32(view.placement.settings.shardCount)
            $0.replicationFactor = UInt32(view.placement.settings.replicationFactor)
            $0.seesMajority = view.seesMajority
            $0.members = view.members.sorted { $0.id < $1.id }.map { member in
                .with {
                    $0.id = member.id.rawValue
                    $0.address = member.address
                    $0.status = "\(member.status)"
                    $0.incarnation = member.incarnation
                    $0.roles = member.roles.sorted().map(\.rawValue)
                    $0.primaries = view.placement.primaries(of: member.id).map { UInt32($0.rawValue) }
                    $0.followers = view.placement.followers(of: member.id).map { UInt32($0.rawValue) }
                    let heard = member.id == view.myself.id ? .zero : view.lastHeard[member.id] ?? .zero
                    $0.clientAddress = member.clientAddress
                    $0.lastHeardMsAgo = UInt64(max(0, heard.components.seconds * 1000 + heard.components.attoseconds / 1_000_000_000_000_000))
                }
            }
        }
    }

    private func ringResponse(_ view: MembershipView, terms: [UInt64], model: String) -> Infranaut_V1_RingResponse {
        .with {
            $0.status = .ok
            $0.shards = view.placement.assignments.map { assignment in
                .with {
                    $0.shard = UInt32(assignment.shard.rawValue)
                    $0.replicas = assignment.replicas.map(\.rawValue)
                    $0.epoch = assignment.epoch
                    if assignment.shard.rawValue < terms.count { $0.term = terms[assignment.shard.rawValue] }
                }
            }
            if !model.isEmpty {
                $0.modelID = model
                $0.modelShard = UInt32(view.placement.shard(forModel: model).rawValue)
            }
        }
    }

    private func encode(_ response: Infranaut_V1_Response) -> [UInt8] {
        (try? response.serializedBytes()) ?? []
    }
}

extension Infranaut_V1_Response {
    static func error(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_Response {
        .with { $0.error = Infranaut_V1_Status(code: code, message: message) }
    }
}

/// model id -> shard actor, by the cluster's stable hash.
struct Router: Sendable {
    let shards: [ShardActor]

    func shard(for model: String) -> ShardActor {
        shards[ShardID(model: model, shardCount: shards.count).rawValue]
    }

    func shard(number: UInt32) -> ShardActor? {
        Int(number) < shards.count ? shards[Int(number)] : nil
    }
}

/// Bytes of ingest requests being applied (admitted but not finished).
final class InFlightBytes: Sendable {
    private let bytes = Mutex(0)

    func admit(_ size: Int, limit: Int) -> Bool {
        bytes.withLock { current in
            guard current == 0 || current + size <= limit else { return false }
            current += size
            return true
        }
    }

    func release(_ size: Int) { bytes.withLock { $0 -= size } }
}

/// One request client per peer client address, created on first use; shared by forwarding and
/// replication.
final class Forwarder: Sendable {
    private struct Entry {
        var client: RequestClient
        var lastUsed: ContinuousClock.Instant
    }

    /// nil once closed, so that no client can be added after `closeAll`.
    private let clients = Mutex<[String: Entry]?>([:])

    /// Longer than any request a peer client carries (snapshots are capped at 30 s).
    static let idleBeforeClose: Duration = .seconds(120)

    func client(for address: String) throws -> RequestClient {
        try clients.withLock { clients in
            guard clients != nil else {
                throw TransportError(.closed, operation: "send to \(address)", message: "the node is shutting down")
            }
            if let known = clients?[address] {
                clients?[address]?.lastUsed = .now
                return known.client
            }
            let made = try RequestClient(dial: address)
            clients?[address] = Entry(client: made, lastUsed: .now)
            return made
        }
    }

    /// Closes the clients of addresses not in `live` (peers that died, left or restarted on
    /// another port) once nothing used them for `idleBeforeClose`, so the pool does not grow
    /// with every restart and no request in flight (a hand-off, a snapshot fetch from a node
    /// that is leaving) is cut.
    func retain(only live: Set<String>) {
        let now = ContinuousClock.now
        let stale = clients.withLock { clients -> [RequestClient] in
            guard let current = clients else { return [] }
            let gone = current.filter { !live.contains($0.key) && now - $0.value.lastUsed > Self.idleBeforeClose }
            for address in gone.keys { clients?[address] = nil }
            return gone.values.map(\.client)
        }
        for client in stale { client.close() }
    }

    func closeAll() {
        let all = clients.withLock { clients -> [RequestClient] in
            defer { clients = nil }
            return clients.map { $0.values.map(\.client) } ?? []
        }
        for client in all { client.close() }
    }
}
