import Cluster
import Foundation
import Logging
import ServiceLifecycle
import Storage
import SwiftProtobuf
import Wire

/// Reliable dissemination of cluster events to every coordinator: the I/O shell around
/// ``DeliveryQueue``.
///
/// Publisher side: an event is acknowledged to its publisher only once it is durable here
/// (`outbox/<id>` in the meta column family); it is deleted from disk when every coordinator it
/// waited for acknowledged it, so a publisher that restarts resumes delivery. Coordinator side: a
/// delivered event is stored (`inbox/<id>`) before it is acknowledged, and a known id is
/// acknowledged again without being stored twice, so retries after a lost acknowledgement or a
/// coordinator restart deliver each event once.
///
/// As a ServiceLifecycle service it delivers until the node shuts down, sleeping until the next
/// attempt is due unless a publish, a finished attempt or a membership change wakes it.
actor EventRelay: Service {
    /// Events a coordinator keeps, and the payload bytes they may hold together (oldest dropped
    /// first, from memory and disk): payloads are up to 64 KiB, so the count alone would let
    /// 100,000 events hold 6 GiB.
    static let inboxCapacity = 100_000
    static let inboxMaxBytes = 64 << 20
    /// Kinds the inbox keeps apart from the others (``CoordinatorInbox``): what people configured.
    static let retainedKinds: Set<String> = [NotificationLedger.channelKind, NotificationLedger.silenceKind]
    static let attemptTimeout: Duration = .seconds(2)
    /// Events a publisher keeps until delivered; beyond it, publishing is refused (retryably).
    static let outboxCapacity = 100_000
    /// A restarted node waits this long at most for its membership to learn the cluster before it
    /// delivers (so it does not finish an event with itself as the only coordinator it knows).
    static let startupGrace: Duration = .seconds(5)

    private let database: Database
    private let meta: ColumnFamily
    private let writer: GroupCommitWriter
    private let membership: MembershipService
    private let peers: PeerClients
    private let nodeID: String
    private let isCoordinator: Bool
    private let logger: Logger
    private let origin = ContinuousClock.now

    private var queue: DeliveryQueue
    /// Events found in the outbox at startup, queued once the membership knows the cluster (so
    /// that coordinators that are down are targets too).
    private var loaded: [(id: String, payload: [UInt8])]
    private var inbox: CoordinatorInbox
    /// Stored events beyond the caps when the node started; deleted from disk by the first trim.
    /// Signalled when there may be something new to do: an event published, an attempt finished,
    /// the membership changed, the node shutting down.
    private let work = Wakeup()

    init(
        database: Database, meta: ColumnFamily, writer: GroupCommitWriter, membership: MembershipService,
        peers: PeerClients,
        nodeID: String, isCoordinator: Bool, settings: DeliveryQueue.Settings = .init(), logger: Logger
    ) throws(StorageError) {
        self.database = database
        self.meta = meta
        self.writer = writer
        self.membership = membership
        self.peers = peers
        self.nodeID = nodeID
        self.isCoordinator = isCoordinator
        self.logger = logger
        queue = DeliveryQueue(settings: settings)
        var loaded: [(id: String, payload: [UInt8])] = []
        try database.scan(prefix: StorageKeys.Outbox.prefix, in: meta) { (entry) throws(StorageError) -> Bool in
            let id = try StorageKeys.Outbox.parse(entry.key)
            loaded.append((id, entry.value))
            return true
        }
        self.loaded = loaded
        var received: [Infranaut_V1_ReceivedEvent] = []
        try database.scan(prefix: StorageKeys.Inbox.prefix, in: meta) { (entry) throws(StorageError) -> Bool in
            let event = try decode(Infranaut_V1_ReceivedEvent.self, entry.value, "received event")
            received.append(event)
            return true
        }
        inbox = CoordinatorInbox(
            loading: received, capacity: Self.inboxCapacity, maxBytes: Self.inboxMaxBytes,
            retainedKinds: Self.retainedKinds)
    }

    private var now: Duration { ContinuousClock.now - origin }

    // MARK: - Publisher

    func publish(_ event: Infranaut_V1_ClusterEvent) async -> Infranaut_V1_PublishEventResponse {
        do throws(WireError) {
            try event.validate()
        } catch {
            return .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) }
        }
        if queue.payload(of: event.id) != nil {
            return .with {
                $0.status = .ok
                $0.duplicate = true
            }
        }
        guard queue.pendingCount + loaded.count < Self.outboxCapacity else {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable,
                    message:
                        "\(queue.pendingCount) events are still being delivered from this node; retry later or through another node"
                )
            }
        }
        var stamped = event
        // Kept when a leaving node hands its undelivered events to a peer.
        if stamped.sourceNode.isEmpty { stamped.sourceNode = nodeID }
        if stamped.createdUnixMs == 0 { stamped.createdUnixMs = Int64(Date().timeIntervalSince1970 * 1000) }
        let payload: [UInt8]
        do {
            payload = try stamped.serializedBytes()
        } catch {
            return .with {
                $0.status = Infranaut_V1_Status(code: .internal, message: "cannot encode the event: \(error)")
            }
        }
        var batch = WriteBatch()
        batch.put(StorageKeys.Outbox.key(eventID: event.id), payload, in: meta)
        do throws(StorageError) {
            try await writer.write(batch)
        } catch {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "the event could not be made durable (\(error.code.rawValue)); retry")
            }
        }
        // Another publish of the same id may have been made durable meanwhile: then this is it.
        guard queue.publish(id: event.id, payload: payload, now: now) else {
            return .with {
                $0.status = .ok
                $0.duplicate = true
            }
        }
        queue.coordinatorsChanged(await membership.coordinators, now: now)
        work.signal()
        return .with { $0.status = .ok }
    }

    /// Events published here that some coordinator has not acknowledged yet.
    var pendingCount: Int { queue.pendingIDs.count + loaded.count }

    /// Whether the event `id`, published here, still waits for some coordinator.
    func isPending(_ id: String) -> Bool {
        queue.payload(of: id) != nil || loaded.contains { $0.id == id }
    }

    /// The events published here that some coordinator has not acknowledged yet.
    func pendingEvents() -> [Infranaut_V1_ClusterEvent] {
        let payloads = queue.pendingIDs.compactMap { queue.payload(of: $0) } + loaded.map(\.payload)
        return payloads.compactMap { try? Infranaut_V1_ClusterEvent(serializedBytes: $0) }
    }

    /// Delivers until graceful shutdown or cancellation. Each attempt runs in a child task, so the
    /// attempts in flight when it stops are awaited (each ends within `attemptTimeout`).
    func run() async {
        await membership.notifyChanges(to: work)
        await withTaskCancellationOrGracefulShutdownHandler {
            await deliverUntilStopped()
        } onCancelOrGracefulShutdown: { [work] in
            work.signal()
        }
    }

    private func deliverUntilStopped() async {
        let graceEnds = ContinuousClock.now + Self.startupGrace
        while !isStopping, ContinuousClock.now < graceEnds, await membership.view.members.count < 2 {
            await work.wait(until: graceEnds)
        }
        await trimInbox()
        queue.coordinatorsChanged(await membership.coordinators, now: now)
        for event in loaded { queue.publish(id: event.id, payload: event.payload, now: now) }
        loaded = []
        await withDiscardingTaskGroup { attempts in
            while !isStopping {
                queue.coordinatorsChanged(await membership.coordinators, now: now)
                let expired = queue.takeExpired()
                if !expired.isEmpty {
                    await deleteRecords(expired.map { StorageKeys.Outbox.key(eventID: $0) }, "expired outbox events")
                    logger.warning(
                        "events expired before every coordinator acknowledged them",
                        metadata: ["events": "\(expired.count)"])
                }
                for attempt in queue.due(now: now) {
                    guard let payload = queue.payload(of: attempt.id) else { continue }
                    attempts.addTask {
                        await self.finish(attempt, delivered: await self.deliver(payload, attempt: attempt))
                    }
                }
                await work.wait(until: queue.nextDeadline.map { origin + $0 })
            }
        }
    }

    private nonisolated func deliver(_ payload: [UInt8], attempt: DeliveryQueue.Attempt) async -> Bool {
        guard let event = try? Infranaut_V1_ClusterEvent(serializedBytes: payload) else { return false }
        let request = Infranaut_V1_Request.with {
            $0.version = 1
            $0.hops = 1
            $0.deliverEvent = .with {
                $0.event = event
                $0.fromNode = nodeID
            }
        }
        do {
            let reply = try await peers.call(request, to: attempt.address, timeout: Self.attemptTimeout)
            guard case .deliverEvent(let answer) = reply.body else { return false }
            return answer.status.code == .ok
        } catch {
            return false
        }
    }

    private func finish(_ attempt: DeliveryQueue.Attempt, delivered: Bool) async {
        defer { work.signal() }
        guard delivered else {
            queue.failed(attempt, now: now)
            return
        }
        queue.delivered(attempt)
        if queue.payload(of: attempt.id) == nil {
            // Losing this delete only means the event is delivered again after a restart (deduped).
            await deleteRecords([StorageKeys.Outbox.key(eventID: attempt.id)], "a delivered outbox event")
        }
    }

    // MARK: - Coordinator

    func receive(_ request: Infranaut_V1_DeliverEventRequest) async -> Infranaut_V1_DeliverEventResponse {
        guard isCoordinator else {
            return .with {
                $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "node \(nodeID) is not a coordinator")
            }
        }
        do throws(WireError) {
            try request.event.validate()
        } catch {
            return .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) }
        }
        if inbox.contains(request.event.id) {
            return .with {
                $0.status = .ok
                $0.duplicate = true
            }
        }
        let received = Infranaut_V1_ReceivedEvent.with {
            $0.event = request.event
            $0.receivedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        }
        var batch = WriteBatch()
        do throws(StorageError) {
            batch.put(StorageKeys.Inbox.key(eventID: request.event.id), try encode(received), in: meta)
            try await writer.write(batch)
        } catch {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "the event could not be stored (\(error.code.rawValue)); retry")
            }
        }
        guard !inbox.contains(request.event.id) else {
            return .with {
                $0.status = .ok
                $0.duplicate = true
            }
        }
        inbox.insert(received)
        await trimInbox()
        await listener?(request.event)
        return .with { $0.status = .ok }
    }

    /// Stores the events another coordinator holds that this one lacks (a catch-up after joining
    /// or restarting), keeping the time that one received them, and hands each to the listener.
    /// Returns how many were new here.
    func adopt(_ received: [Infranaut_V1_ReceivedEvent]) async throws(StorageError) -> Int {
        let fresh = received.filter { !inbox.contains($0.event.id) && (try? $0.event.validate()) != nil }
        guard isCoordinator, !fresh.isEmpty else { return 0 }
        var batch = WriteBatch()
        for event in fresh { batch.put(StorageKeys.Inbox.key(eventID: event.event.id), try encode(event), in: meta) }
        try await writer.write(batch)
        var added = 0
        for event in fresh where !inbox.contains(event.event.id) {
            inbox.insert(event)
            added += 1
            await listener?(event.event)
        }
        await trimInbox()
        return added
    }

    /// Drops what the inbox no longer keeps, in memory and on disk (a failed delete is trimmed
    /// again at the next start).
    private func trimInbox() async {
        await deleteRecords(inbox.trim().map { StorageKeys.Inbox.key(eventID: $0) }, "trimmed inbox events")
    }

    /// Deletes stored outbox or inbox records. A failure costs a redelivery (deduped) or a second
    /// trim after the next start, never an event, so it is logged rather than fatal.
    private func deleteRecords(_ keys: [[UInt8]], _ what: String) async {
        guard !keys.isEmpty else { return }
        var batch = WriteBatch()
        for key in keys { batch.delete(key, in: meta) }
        do throws(StorageError) {
            try await writer.write(batch)
        } catch {
            logger.warning("could not delete \(what)", metadata: ["records": "\(keys.count)", "error": "\(error)"])
        }
    }

    /// Every event the inbox keeps, oldest first (what a coordinator's notifier starts from).
    func receivedEvents() -> [Infranaut_V1_ClusterEvent] {
        inbox.newest(limit: Int.max, maxBytes: Int.max).map(\.event)
    }

    /// Called with each event stored in the inbox from now on (once per id).
    func listen(_ listener: @escaping @Sendable (Infranaut_V1_ClusterEvent) async -> Void) {
        self.listener = listener
    }

    private var listener: (@Sendable (Infranaut_V1_ClusterEvent) async -> Void)?

    /// Bytes of event payloads one `events` answer carries at most (newest first kept).
    static let maxListBytes = 16 << 20

    func list(limit: Int, kinds: Set<String> = []) -> Infranaut_V1_EventsResponse {
        return .with {
            $0.status = .ok
            $0.events = inbox.newest(limit: limit, maxBytes: Self.maxListBytes, kinds: kinds)
            $0.pendingOutbound = UInt32(queue.pendingIDs.count)
            $0.receivedTotal = inbox.receivedTotal
        }
    }
}
