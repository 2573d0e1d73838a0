import Foundation
import Monitoring
import Storage
public import Wire

/// How a shard reaches the other replicas of its shard. Provided by the node (membership and
/// forwarding clients); a shard without a link is a single replica.
public struct ReplicationLink: Sendable {
    /// Peer addresses of the shard's followers while this node is its primary (empty when it has
    /// none); nil when this node is not the shard's primary in its own view. Followers that are
    /// alive or suspect count: a write is acknowledged only once every one of them holds it.
    public var followers: @Sendable (_ shard: Int) async -> [String]?
    /// Sends one request to a peer node and returns its response.
    public var send:
        @Sendable (_ address: String, _ request: Infranaut_V1_Request) async throws -> Infranaut_V1_Response
    public var nodeID: String
    /// How long an ingest waits for its followers before it is answered with a retryable error.
    public var ackTimeout: Duration

    public init(
        nodeID: String, ackTimeout: Duration,
        followers: @escaping @Sendable (_ shard: Int) async -> [String]?,
        send:
            @escaping @Sendable (_ address: String, _ request: Infranaut_V1_Request) async throws ->
            Infranaut_V1_Response
    ) {
        self.nodeID = nodeID
        self.ackTimeout = ackTimeout
        self.followers = followers
        self.send = send
    }
}

/// Replication of a shard from its primary to its followers (docs/replication.md).
///
/// Invariants:
/// 1. An ingest is acknowledged only after its op is durable and applied here *and* on every
///    current follower. A key applied here but not yet replicated is answered as a replay only
///    after its op reached the followers.
/// 2. Every op carries the term of the primary that wrote it. A node starts a new term (its last
///    op's term + 1) the first time it writes after being a follower or restarting. Replica
///    histories are compared by (term of the last op, applied sequence): the larger one holds every
///    acknowledged op, because an op is acknowledged only when the followers hold it.
/// 3. Followers apply ops strictly in sequence order and only where their history continues the
///    primary's (`prev_sequence`/`prev_term`). Otherwise the primary sends its snapshot when it is
///    ahead, or fetches the follower's when the follower is ahead (a node that returns after a
///    crash, or a new node taking over shards, adopts the state of the replica that served meanwhile).
/// 4. Terms are fencing tokens. A replica durably promises a term to one node before it accepts
///    anything in it, and from then refuses ops and snapshots of lower terms and of other nodes in
///    the same term (outcome STALE). A primary claims its term from every follower before its
///    first write and steps down on STALE, failing whatever waited for that follower. So two
///    nodes that both believe they are primary for a moment cannot both get a write acknowledged
///    through a follower they share.
/// 5. A remembered key is answered as a replay only by an established primary and only once its
///    op is on every follower (`replicatedThrough`), so a replay never acknowledges an op that a
///    newer history does not contain.

/// An ingest waiting until its op is on every follower.
struct ReplicationWaiter {
    var sequence: UInt64
    var deadline: ContinuousClock.Instant
    var continuation: CheckedContinuation<Bool, Never>
}

extension ShardActor {
    public func attach(_ link: ReplicationLink, onFailure: (@Sendable (String) -> Void)? = nil) {
        self.link = link
        self.onFailure = onFailure
    }

    var notReplicatedMessage: String {
        "the batch is durable on the shard's primary but not yet on its followers; retry with the same idempotency key"
    }

    /// Waits until every current follower holds `sequence`, or the link's ack timeout passes.
    func awaitReplicated(_ sequence: UInt64) async -> Bool {
        guard let link else { return true }
        if sequence <= primary.replicatedThrough { return true }
        // Not the primary (any more): the op cannot reach the followers from here.
        guard primary.writingTerm != nil else { return false }
        let deadline = ContinuousClock.now + link.ackTimeout
        let done = await withCheckedContinuation { continuation in
            primary.replicationWaiters.append(
                ReplicationWaiter(sequence: sequence, deadline: deadline, continuation: continuation))
            if !activities.isRunning(.exchange) { inBackground { await self.pump() } }
        }
        return done
    }

    /// Before its first write as primary (after a restart or after being a follower), the shard
    /// claims a new term: it promises the term to itself, then asks every follower to promise it
    /// (a `ReplicateRequest` with no ops). A follower promises durably before it answers, so from
    /// then on it refuses every older primary; its answer says where its history ends, and the
    /// shard adopts a follower's state that is ahead of its own. A follower that promised a higher
    /// term makes the shard try again above it (at most three times). False when a follower could
    /// not be asked or kept outbidding (the write is refused, retryably).
    func establishTerm() async -> Bool {
        guard activities.begin(.claim) else {
            return await withCheckedContinuation { primary.claimWaiters.append($0) }
        }
        let established = await claimTerm()
        finish(.claim)
        for waiter in primary.claimWaiters { waiter.resume(returning: established) }
        primary.claimWaiters = []
        return established
    }

    func claimTerm() async -> Bool {
        let me = link?.nodeID ?? ""
        var term = max(lastTerm, promise.term) + 1
        for _ in 0..<3 {
            guard await promiseDurably(TermPromise(term: term, holder: me)) else { return false }
            guard let link else {
                primary.writingTerm = term
                return true
            }
            // A node that is not the primary in its own view must not write: a request forwarded
            // by a node whose view differs would otherwise be acknowledged with no follower.
            guard let followers = await link.followers(shard) else { return false }
            var outbid: UInt64?
            for follower in followers {
                let request = replicateRequest(
                    after: appliedSequence, prevTerm: lastTerm, term: term, ops: [], link: link)
                guard let response = try? await link.send(follower, request),
                    case .replicate(let reply) = response.body,
                    reply.status.code == .ok
                else { return false }
                if reply.outcome == .stale {
                    outbid = max(outbid ?? 0, reply.promisedTerm)
                    break
                }
                if (reply.lastTerm, reply.applied) > (lastTerm, appliedSequence) {
                    guard await adopt(from: follower, link: link) else { return false }
                }
                if reply.outcome == .applied { primary.followerAcked[follower] = reply.applied }
            }
            if let outbid {
                term = max(term, outbid) + 1
                continue
            }
            // A higher claim may have reached this replica while it asked its followers.
            guard promise == TermPromise(term: term, holder: me) else { return false }
            primary.writingTerm = term
            // What every follower is known to hold; after a restart the ops after it are sent again
            // before a retry of their keys is answered.
            primary.replicatedThrough = min(
                appliedSequence, followers.map { primary.followerAcked[$0] ?? 0 }.min() ?? appliedSequence)
            logger.debug("writing in a new term", metadata: ["term": "\(term)", "applied": "\(appliedSequence)"])
            return true
        }
        return false
    }

    /// Records `promise` durably (a no-op when it equals the current one). One promise is made at
    /// a time: a second request meanwhile is refused (its sender retries), so two claims can never
    /// both pass the check and the promise can never go backwards.
    func promiseDurably(_ promise: TermPromise) async -> Bool {
        guard promise.term > self.promise.term else { return promise == self.promise }
        guard activities.begin(.promise) else { return false }
        defer { finish(.promise) }
        var batch = WriteBatch()
        batch.put(
            StorageKeys.Promise.key(shard: shard),
            StorageKeys.Promise.value(term: promise.term, holder: promise.holder), in: store.meta)
        do throws(StorageError) {
            try await writer.write(batch)
        } catch {
            fail("durable write of a term promise failed: \(error)")
            return false
        }
        self.promise = promise
        return true
    }

    /// This replica promised a higher term to another primary: whatever waits for the followers
    /// is not acknowledged (clients retry, and the retry goes to the new primary's history).
    func stepDown(promised: UInt64, by follower: String) {
        logger.info(
            "another primary claimed the shard", metadata: ["follower": "\(follower)", "promised": "\(promised)"])
        becomeFollower()
        failReplicationWaiters()
    }

    /// Answers every ingest waiting for its followers with "not acknowledged".
    func failReplicationWaiters() {
        for waiter in primary.replicationWaiters { waiter.continuation.resume(returning: false) }
        primary.replicationWaiters.removeAll()
    }

    /// Raises `replicatedThrough` to what every one of `followers` is known to hold, and drops the
    /// ops they all have from the outbox.
    func noteHeld(by followers: [String]) {
        let held = followers.map { primary.followerAcked[$0] ?? 0 }.min() ?? appliedSequence
        primary.replicatedThrough = max(primary.replicatedThrough, min(held, appliedSequence))
        let through = primary.replicatedThrough
        primary.outbox.removeAll { $0.sequence <= through }
    }

    /// Runs `body` as the shard's only exchange with its followers (the writes' pump, the sweep,
    /// a hand-off and seeding take turns); false, without running it, while another one runs.
    /// Writes that arrived meanwhile get their pump afterwards.
    func asTheOnlyExchange(_ body: () async -> Void) async -> Bool {
        guard activities.begin(.exchange) else { return false }
        await body()
        finish(.exchange)
        if !primary.replicationWaiters.isEmpty { inBackground { await self.pump() } }
        return true
    }

    /// Whether reads may be served from this replica's state. A primary that has not yet written
    /// in its term (just restarted, or just took over) may hold an older history than a follower,
    /// so it first establishes its term, as a write would, and adopts a newer follower state.
    public func readyForReads() async -> Bool {
        guard primary.writingTerm == nil, let link, let followers = await link.followers(shard), !followers.isEmpty
        else { return true }
        return await establishTerm()
    }

    /// One anti-entropy pass: as the shard's primary (in this node's view), claim the term if not
    /// done yet (adopting a follower's newer state), then send every follower that is not known to
    /// hold everything applied here what it lacks. Does nothing while writes are replicating (they
    /// do the same) or when this node is not the primary.
    public func sweepFollowers() async {
        guard case .serving = state, let link, !activities.isRunning(.exchange), !activities.isRunning(.claim) else {
            return
        }
        guard let followers = await link.followers(shard), !followers.isEmpty else { return }
        // A node that just became primary (a join, or its old primary died) may be behind its
        // follower: the claim adopts the newer state before anything is served from here.
        if primary.writingTerm == nil {
            guard await establishTerm() else { return }
        }
        _ = await asTheOnlyExchange {
            for follower in followers
            where primary.followerAcked[follower] == nil || primary.followerAcked[follower]! < appliedSequence {
                await sync(follower, link: link)
            }
            noteHeld(by: followers)
        }
    }

    /// A node-to-node request: never forwarded (`hops = 1`).
    func peerRequest(_ body: Infranaut_V1_Request.OneOf_Body) -> Infranaut_V1_Request {
        .with {
            $0.version = 1
            $0.hops = 1
            $0.body = body
        }
    }

    func replicateRequest(
        after sequence: UInt64, prevTerm: UInt64, term: UInt64, ops: [Infranaut_V1_StoredOp], link: ReplicationLink
    ) -> Infranaut_V1_Request {
        peerRequest(
            .replicate(
                .with {
                    $0.shard = UInt32(shard)
                    $0.prevSequence = sequence
                    $0.prevTerm = prevTerm
                    $0.ops = ops
                    $0.fromNode = link.nodeID
                    $0.term = term
                }))
    }

    func termAt(_ sequence: UInt64) -> UInt64? {
        log.term(at: sequence)
    }

    /// Sends ops (or snapshots) to the followers until every waiter is answered.
    func pump() async {
        guard let link, activities.begin(.exchange) else { return }
        defer { finish(.exchange) }
        while case .serving = state, !primary.replicationWaiters.isEmpty {
            guard let followers = await link.followers(shard) else {
                // No longer the primary in this node's view: nothing waiting is acknowledged here.
                becomeFollower()
                failReplicationWaiters()
                break
            }
            primary.followerAcked = primary.followerAcked.filter { followers.contains($0.key) }
            let before = primary.replicatedThrough
            for follower in followers where (primary.followerAcked[follower] ?? 0) < appliedSequence {
                await sync(follower, link: link)
            }
            noteHeld(by: followers)
            let now = ContinuousClock.now
            var waiting: [ReplicationWaiter] = []
            for waiter in primary.replicationWaiters {
                if waiter.sequence <= primary.replicatedThrough {
                    waiter.continuation.resume(returning: true)
                } else if waiter.deadline <= now {
                    waiter.continuation.resume(returning: false)
                } else {
                    waiting.append(waiter)
                }
            }
            primary.replicationWaiters = waiting
            if primary.replicatedThrough == before && !waiting.isEmpty {
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        // A stopped or failed shard answers the waiters it still has.
        for waiter in primary.replicationWaiters where waiter.sequence > primary.replicatedThrough {
            waiter.continuation.resume(returning: false)
        }
        primary.replicationWaiters.removeAll()
    }

    /// One exchange with one follower: ops after what it holds, or a snapshot either way.
    func sync(_ follower: String, link: ReplicationLink) async {
        let from = primary.followerAcked[follower] ?? (primary.outbox.first.map { $0.sequence - 1 } ?? appliedSequence)
        guard let prevTerm = termAt(from), primary.outbox.isEmpty || from + 1 >= primary.outbox[0].sequence else {
            return await pushSnapshot(to: follower, link: link)
        }
        var ops: [Infranaut_V1_StoredOp] = []
        var bytes = 0
        for op in primary.outbox where op.sequence > from {
            ops.append(op)
            bytes += Int(op.batch.rowCount) * max(1, op.batch.columns.count) * 8
            if ops.count >= 512 || bytes >= 8 << 20 { break }
        }
        guard let term = primary.writingTerm else { return }
        let request = replicateRequest(after: from, prevTerm: prevTerm, term: term, ops: ops, link: link)
        guard let response = try? await link.send(follower, request), case .replicate(let reply) = response.body else {
            primary.followerAcked[follower] = nil
            return
        }
        guard reply.status.code == .ok else {
            logger.debug(
                "follower refused ops", metadata: ["follower": "\(follower)", "message": "\(reply.status.message)"])
            return
        }
        switch reply.outcome {
        case .applied:
            primary.followerAcked[follower] = reply.applied
        case .stale:
            stepDown(promised: reply.promisedTerm, by: follower)
        default:
            if (reply.lastTerm, reply.applied) > (lastTerm, appliedSequence) {
                await adopt(from: follower, link: link)
            } else {
                await pushSnapshot(to: follower, link: link)
            }
        }
    }

    func pushSnapshot(to follower: String, link: ReplicationLink) async {
        guard let term = primary.writingTerm else { return }
        let snapshot = exportSnapshot()
        let request = peerRequest(
            .installSnapshot(
                .with {
                    $0.snapshot = snapshot
                    $0.fromNode = link.nodeID
                    $0.term = term
                }))
        guard let response = try? await link.send(follower, request), case .installSnapshot(let reply) = response.body
        else { return }
        if reply.stale { return stepDown(promised: reply.promisedTerm, by: follower) }
        guard reply.status.code == .ok else { return }
        logger.info(
            "follower caught up from a snapshot",
            metadata: ["follower": "\(follower)", "applied": "\(snapshot.applied)"])
        primary.followerAcked[follower] = snapshot.applied
    }

    /// Takes over the state of a follower that is ahead of this primary.
    @discardableResult
    func adopt(from follower: String, link: ReplicationLink) async -> Bool {
        let request = peerRequest(
            .fetchSnapshot(
                .with {
                    $0.shard = UInt32(shard)
                    $0.fromNode = link.nodeID
                }))
        guard let response = try? await link.send(follower, request), case .fetchSnapshot(let reply) = response.body,
            reply.status.code == .ok
        else { return false }
        guard (reply.snapshot.lastTerm, reply.snapshot.applied) > (lastTerm, appliedSequence) else { return true }
        let status = await install(reply.snapshot)
        guard status.code == .ok else { return false }
        logger.info(
            "adopted a follower's newer state",
            metadata: ["follower": "\(follower)", "applied": "\(reply.snapshot.applied)"])
        primary.followerAcked[follower] = reply.snapshot.applied
        return true
    }
}
