import Foundation
import Monitoring
import Storage
public import Wire

/// How a shard reaches the other replicas of its shard. Provided by the node (membership and
/// forwarding clients); a shard without a link is a single replica.
public struct ReplicationLink: Sendable {
    /// Client addresses of the shard's followers while this node is its primary (empty when it has
    /// none); nil when this node is not the shard's primary in its own view. Followers that are
    /// alive or suspect count: a write is acknowledged only once every one of them holds it.
    public var followers: @Sendable (_ shard: Int) async -> [String]?
    /// Sends one request to a peer node and returns its response.
    public var send: @Sendable (_ address: String, _ request: Infranaut_V1_Request) async throws -> Infranaut_V1_Response
    public var nodeID: String
    /// How long an ingest waits for its followers before it is answered with a retryable error.
    public var ackTimeout: Duration

    public init(
        nodeID: String, ackTimeout: Duration,
        followers: @escaping @Sendable (_ shard: Int) async -> [String]?,
        send: @escaping @Sendable (_ address: String, _ request: Infranaut_V1_Request) async throws -> Infranaut_V1_Response
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
            primary.replicationWaiters.append(ReplicationWaiter(sequence: sequence, deadline: deadline, continuation: continuation))
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

    private func claimTerm() async -> Bool {
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
                let request = replicateRequest(after: appliedSequence, prevTerm: lastTerm, term: term, ops: [], link: link)
                guard let response = try? await link.send(follower, request), case .replicate(let reply) = response.body,
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
            primary.replicatedThrough = min(appliedSequence, followers.map { primary.followerAcked[$0] ?? 0 }.min() ?? appliedSequence)
            logger.debug("writing in a new term", metadata: ["term": "\(term)", "applied": "\(appliedSequence)"])
            return true
        }
        return false
    }

    /// Records `promise` durably (a no-op when it equals the current one). One promise is made at
    /// a time: a second request meanwhile is refused (its sender retries), so two claims can never
    /// both pass the check and the promise can never go backwards.
    private func promiseDurably(_ promise: TermPromise) async -> Bool {
        guard promise.term > self.promise.term else { return promise == self.promise }
        guard activities.begin(.promise) else { return false }
        defer { finish(.promise) }
        var batch = WriteBatch()
        batch.put(StorageKeys.Promise.key(shard: shard), StorageKeys.Promise.value(term: promise.term, holder: promise.holder), in: store.meta)
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
    private func stepDown(promised: UInt64, by follower: String) {
        logger.info("another primary claimed the shard", metadata: ["follower": "\(follower)", "promised": "\(promised)"])
        becomeFollower()
        failReplicationWaiters()
    }

    /// Answers every ingest waiting for its followers with "not acknowledged".
    private func failReplicationWaiters() {
        for waiter in primary.replicationWaiters { waiter.continuation.resume(returning: false) }
        primary.replicationWaiters.removeAll()
    }

    /// Raises `replicatedThrough` to what every one of `followers` is known to hold, and drops the
    /// ops they all have from the outbox.
    private func noteHeld(by followers: [String]) {
        let held = followers.map { primary.followerAcked[$0] ?? 0 }.min() ?? appliedSequence
        primary.replicatedThrough = max(primary.replicatedThrough, min(held, appliedSequence))
        let through = primary.replicatedThrough
        primary.outbox.removeAll { $0.sequence <= through }
    }

    /// Runs `body` as the shard's only exchange with its followers (the writes' pump, the sweep,
    /// a hand-off and seeding take turns); false, without running it, while another one runs.
    /// Writes that arrived meanwhile get their pump afterwards.
    private func asTheOnlyExchange(_ body: () async -> Void) async -> Bool {
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
        guard primary.writingTerm == nil, let link, let followers = await link.followers(shard), !followers.isEmpty else { return true }
        return await establishTerm()
    }

    /// For a node that leaves: as this shard's primary, first adopts the leaving node's copy when
    /// it is ahead of this one (it may be the only up-to-date copy, e.g. with replication factor 1),
    /// then brings every current follower up to what is applied here (snapshots as needed) and
    /// answers once they hold it, or after `timeout` with a retryable error. The target is fixed
    /// when the followers are first synced, so writes arriving meanwhile cannot keep it moving.
    public func handOff(_ request: Infranaut_V1_HandOffRequest, timeout: Duration) async -> Infranaut_V1_HandOffResponse {
        guard case .serving = state else { return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: unavailableMessage) } }
        let deadline = ContinuousClock.now + timeout
        var target: UInt64?
        while ContinuousClock.now < deadline {
            if link != nil, primary.writingTerm == nil, !(await establishTerm()) {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if (request.lastTerm, request.applied) > (lastTerm, appliedSequence) {
                // Adopting would discard what this primary wrote in its own term: the histories
                // have split, and neither may simply replace the other.
                guard primary.writingTerm == nil || lastTerm < primary.writingTerm! else {
                    return .with {
                        $0.status = Infranaut_V1_Status(
                            code: .internal,
                            message: "shard \(shard) was written here in term \(lastTerm) while the leaving node's copy is ahead; the histories have split")
                    }
                }
                guard let link, !request.fromAddress.isEmpty, await adopt(from: request.fromAddress, link: link),
                      (lastTerm, appliedSequence) >= (request.lastTerm, request.applied)
                else {
                    return .with {
                        $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not fetch the leaving node's newer copy; retry")
                    }
                }
                // The install dropped the term: claim again before syncing followers.
                continue
            }
            guard let link else {
                return .with {
                    $0.status = .ok
                    $0.applied = appliedSequence
                    $0.lastTerm = lastTerm
                }
            }
            guard let followers = await link.followers(shard) else {
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "this node is not shard \(shard)'s primary in its view; retry") }
            }
            let goal = target ?? appliedSequence
            target = goal
            if followers.allSatisfy({ (primary.followerAcked[$0] ?? 0) >= goal }) {
                return .with {
                    $0.status = .ok
                    $0.applied = goal
                    $0.lastTerm = termAt(goal) ?? lastTerm
                    $0.followers = followers
                    $0.containsLeavingCopy = holdsOp(at: request.applied, term: request.lastTerm, model: request.lastModel, key: request.lastKey)
                }
            }
            // While a pump or sweep runs, it does the same; the next pass checks again.
            _ = await asTheOnlyExchange {
                for follower in followers where (primary.followerAcked[follower] ?? 0) < goal {
                    await sync(follower, link: link)
                }
            }
            if !followers.allSatisfy({ (primary.followerAcked[$0] ?? 0) >= goal }) {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return .with {
            $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard)'s followers did not catch up within \(timeout); retry")
        }
    }

    /// Whether this history holds the op another replica has at `sequence`: by its key when given
    /// (the same key applied at the same sequence), else by the term at that sequence; true when
    /// neither can be checked any more (older than the idempotency window and the term memory).
    func holdsOp(at sequence: UInt64, term: UInt64, model: String, key: String) -> Bool {
        if sequence == 0 { return true }
        if !key.isEmpty, let record = remembered[IdempotencyKey(model: model, key: key)] { return record.sequence == sequence }
        if let known = termAt(sequence) { return known == term && key.isEmpty }
        return key.isEmpty
    }

    /// The model and key of the op at `appliedSequence`, while it is remembered.
    public var lastOpKey: (model: String, key: String)? {
        guard appliedSequence > 0 else { return nil }
        return remembered.key(atSequence: appliedSequence).map { ($0.model, $0.key) }
    }

    /// For a node about to leave that holds the only copy of this shard (it is primary with no
    /// follower): installs its state on `address`, the shard's primary once it is gone, under its
    /// own term, before anyone can write there. True once `address` holds everything applied here.
    public func seed(_ address: String) async -> Bool {
        guard case .serving = state, let link else { return false }
        if primary.writingTerm == nil {
            guard await establishTerm() else { return false }
        }
        guard await asTheOnlyExchange({ await pushSnapshot(to: address, link: link) }) else { return false }
        return primary.followerAcked[address] == appliedSequence
    }

    /// One anti-entropy pass: as the shard's primary (in this node's view), claim the term if not
    /// done yet (adopting a follower's newer state), then send every follower that is not known to
    /// hold everything applied here what it lacks. Does nothing while writes are replicating (they
    /// do the same) or when this node is not the primary.
    public func sweepFollowers() async {
        guard case .serving = state, let link, !activities.isRunning(.exchange), !activities.isRunning(.claim) else { return }
        guard let followers = await link.followers(shard), !followers.isEmpty else { return }
        // A node that just became primary (a join, or its old primary died) may be behind its
        // follower: the claim adopts the newer state before anything is served from here.
        if primary.writingTerm == nil {
            guard await establishTerm() else { return }
        }
        _ = await asTheOnlyExchange {
            for follower in followers where primary.followerAcked[follower] == nil || primary.followerAcked[follower]! < appliedSequence {
                await sync(follower, link: link)
            }
            noteHeld(by: followers)
        }
    }

    /// A node-to-node request: never forwarded (`hops = 1`).
    private func peerRequest(_ body: Infranaut_V1_Request.OneOf_Body) -> Infranaut_V1_Request {
        .with {
            $0.version = 1
            $0.hops = 1
            $0.body = body
        }
    }

    private func replicateRequest(
        after sequence: UInt64, prevTerm: UInt64, term: UInt64, ops: [Infranaut_V1_StoredOp], link: ReplicationLink
    ) -> Infranaut_V1_Request {
        peerRequest(.replicate(.with {
            $0.shard = UInt32(shard)
            $0.prevSequence = sequence
            $0.prevTerm = prevTerm
            $0.ops = ops
            $0.fromNode = link.nodeID
            $0.term = term
        }))
    }

    private func termAt(_ sequence: UInt64) -> UInt64? {
        if sequence == appliedSequence { return lastTerm }
        if sequence == 0 { return 0 }
        return recentTerms[sequence]
    }

    /// Sends ops (or snapshots) to the followers until every waiter is answered.
    private func pump() async {
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
    private func sync(_ follower: String, link: ReplicationLink) async {
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
            logger.debug("follower refused ops", metadata: ["follower": "\(follower)", "message": "\(reply.status.message)"])
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

    private func pushSnapshot(to follower: String, link: ReplicationLink) async {
        guard let term = primary.writingTerm else { return }
        let snapshot = exportSnapshot()
        let request = peerRequest(.installSnapshot(.with {
            $0.snapshot = snapshot
            $0.fromNode = link.nodeID
            $0.term = term
        }))
        guard let response = try? await link.send(follower, request), case .installSnapshot(let reply) = response.body else { return }
        if reply.stale { return stepDown(promised: reply.promisedTerm, by: follower) }
        guard reply.status.code == .ok else { return }
        logger.info("follower caught up from a snapshot", metadata: ["follower": "\(follower)", "applied": "\(snapshot.applied)"])
        primary.followerAcked[follower] = snapshot.applied
    }

    /// Takes over the state of a follower that is ahead of this primary.
    @discardableResult
    private func adopt(from follower: String, link: ReplicationLink) async -> Bool {
        let request = peerRequest(.fetchSnapshot(.with {
            $0.shard = UInt32(shard)
            $0.fromNode = link.nodeID
        }))
        guard let response = try? await link.send(follower, request), case .fetchSnapshot(let reply) = response.body,
              reply.status.code == .ok
        else { return false }
        guard (reply.snapshot.lastTerm, reply.snapshot.applied) > (lastTerm, appliedSequence) else { return true }
        let status = await install(reply.snapshot)
        guard status.code == .ok else { return false }
        logger.info("adopted a follower's newer state", metadata: ["follower": "\(follower)", "applied": "\(reply.snapshot.applied)"])
        primary.followerAcked[follower] = reply.snapshot.applied
        return true
    }

    // MARK: - Follower side

    /// Applies ops from the shard's primary.
    public func receiveReplicate(_ request: Infranaut_V1_ReplicateRequest) async -> Infranaut_V1_ReplicateResponse {
        guard case .serving = state else { return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is not serving") } }
        func answer(_ outcome: Infranaut_V1_ReplicaOutcome) -> Infranaut_V1_ReplicateResponse {
            .with {
                $0.status = .ok
                $0.outcome = outcome
                $0.applied = appliedSequence
                $0.lastTerm = lastTerm
                $0.promisedTerm = promise.term
            }
        }
        guard promise.admits(term: request.term, from: request.fromNode) else { return answer(.stale) }
        guard !activities.isRunning(.replicaWrite), !hasPendingOps else {
            return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry") }
        }
        let claimed = TermPromise(term: request.term, holder: request.fromNode)
        if claimed != promise {
            // A new primary: promise its term before answering (and before applying its ops), so no
            // older primary can write here any more.
            becomeFollower()
            guard await promiseDurably(claimed) else {
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not store the term promise") }
            }
            // The write may have let another request in.
            guard promise == claimed, !activities.isRunning(.replicaWrite), !hasPendingOps else {
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry") }
            }
        }
        func mismatch() -> Infranaut_V1_ReplicateResponse { answer(.mismatch) }
        guard request.prevSequence <= appliedSequence, termAt(request.prevSequence) == request.prevTerm else { return mismatch() }
        var expected = request.prevSequence + 1
        var fresh: [Infranaut_V1_StoredOp] = []
        for op in request.ops {
            guard op.sequence == expected else { return mismatch() }
            expected += 1
            if op.sequence <= appliedSequence {
                guard termAt(op.sequence) == op.term else { return mismatch() }
            } else {
                fresh.append(op)
            }
        }
        if !fresh.isEmpty {
            guard activities.begin(.replicaWrite) else {
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry") }
            }
            defer { finish(.replicaWrite) }
            do throws(StorageError) {
                var batch = WriteBatch()
                for op in fresh {
                    batch.put(StorageKeys.Ops.key(shard: shard, sequence: op.sequence), try encode(op), in: store.ops)
                    batch.put(
                        StorageKeys.Idempotency.key(shard: shard, model: op.batch.modelID, key: op.idempotencyKey),
                        try encode(Self.record(of: op)), in: store.idempotency)
                }
                try await writer.write(batch)
            } catch {
                fail("durable write of replicated ops failed: \(error)")
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not store the ops") }
            }
            for op in fresh {
                applyInMemory(op)
                remember(IdempotencyKey(model: op.batch.modelID, key: op.idempotencyKey), Self.record(of: op))
            }
            nextSequence = appliedSequence + 1
            primary.replicatedThrough = appliedSequence
        }
        return answer(.applied)
    }

    /// Replaces this replica's state of the shard with a snapshot from its primary.
    public func receiveSnapshot(_ request: Infranaut_V1_InstallSnapshotRequest) async -> Infranaut_V1_InstallSnapshotResponse {
        guard request.snapshot.shard == UInt32(shard) else {
            return .with { $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "snapshot of shard \(request.snapshot.shard) sent to shard \(shard)") }
        }
        guard promise.admits(term: request.term, from: request.fromNode) else {
            return .with {
                $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) promised term \(promise.term) to \(promise.holder)")
                $0.stale = true
                $0.promisedTerm = promise.term
            }
        }
        let claimed = TermPromise(term: request.term, holder: request.fromNode)
        // From the primary this replica already follows, a snapshot behind what it holds in that
        // primary's term is an older one overtaken by ops or a newer snapshot: installing it
        // would move the replica backwards.
        if claimed == promise, lastTerm == promise.term,
           (request.snapshot.lastTerm, request.snapshot.applied) < (lastTerm, appliedSequence)
        {
            return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) already holds a newer state from \(request.fromNode)") }
        }
        becomeFollower()
        guard await promiseDurably(claimed), promise == claimed else {
            return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not store the term promise; retry") }
        }
        let status = await install(request.snapshot)
        return .with { $0.status = status }
    }

    /// This replica's state of the shard, for a primary that is behind it.
    public func snapshotForPeer() -> Infranaut_V1_FetchSnapshotResponse {
        .with {
            $0.status = .ok
            $0.snapshot = exportSnapshot()
        }
    }

    /// Drops the primary role: ops written from now on come from another node.
    private func becomeFollower() {
        primary.becomeFollower()
    }

    static func record(of op: Infranaut_V1_StoredOp) -> Infranaut_V1_IdempotencyRecord {
        .with {
            $0.acceptedUnixMs = op.acceptedUnixMs
            $0.sequence = op.sequence
            $0.rowsAccepted = UInt64(op.batch.rowCount)
            $0.typeMismatchCount = op.typeMismatches.reduce(0, +)
        }
    }

    func exportSnapshot() -> Infranaut_V1_ShardSnapshot {
        .with {
            $0.shard = UInt32(shard)
            $0.applied = appliedSequence
            $0.lastTerm = lastTerm
            $0.models = models.values.map(\.snapshot)
            $0.idempotency = remembered.snapshotEntries
        }
    }

    /// Replaces the shard's state, on disk (one atomic batch) and in memory.
    private func install(_ snapshot: Infranaut_V1_ShardSnapshot) async -> Infranaut_V1_Status {
        guard case .serving = state else { return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is not serving") }
        guard !activities.isRunning(.replicaWrite), !hasPendingOps, !activities.isRunning(.checkpoint) else {
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
        }
        var loaded: [String: ModelState] = [:]
        for model in snapshot.models {
            do throws(ProfileDecodingError) {
                loaded[model.modelID] = try ModelState(snapshot: model)
            } catch {
                return Infranaut_V1_Status(code: .invalidArgument, message: "snapshot model \(model.modelID): \(error.description)")
            }
        }
        guard activities.begin(.replicaWrite) else { return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry") }
        defer { finish(.replicaWrite) }
        do throws(StorageError) {
            var batch = WriteBatch()
            let (from, to) = StorageKeys.Shard.range(shard)
            batch.deleteRange(from: from, to: to, in: store.ops)
            batch.deleteRange(from: from, to: to, in: store.models)
            batch.deleteRange(from: from, to: to, in: store.idempotency)
            for model in snapshot.models {
                batch.put(StorageKeys.Models.key(shard: shard, model: model.modelID), try encode(model), in: store.models)
            }
            for entry in snapshot.idempotency {
                batch.put(StorageKeys.Idempotency.key(shard: shard, model: entry.modelID, key: entry.key), try encode(entry.record), in: store.idempotency)
            }
            batch.put(StorageKeys.Checkpoint.key(shard: shard), StorageKeys.Checkpoint.value(sequence: snapshot.applied, term: snapshot.lastTerm), in: store.meta)
            try await writer.write(batch)
        } catch {
            fail("snapshot install failed: \(error)")
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not store the snapshot")
        }
        // Ops waiting for their followers were replaced by another history: they are not
        // acknowledged (their clients retry, and the retry is applied in the new history).
        failReplicationWaiters()
        store.modelCount.add(loaded.count - Set(models.keys).union(projectedSchemas.keys).count)
        models = loaded
        projectedSchemas = [:]
        dirtyModels = []
        appliedSequence = snapshot.applied
        checkpointSequence = snapshot.applied
        nextSequence = snapshot.applied + 1
        lastTerm = snapshot.lastTerm
        recentTerms = [snapshot.applied: snapshot.lastTerm]
        primary.replicatedThrough = snapshot.applied
        primary.writingTerm = nil
        primary.outbox.removeAll()
        primary.followerAcked.removeAll()
        remembered = IdempotencyTable(snapshot.idempotency.map { ($0.modelID, $0.key, $0.record) })
        return .ok
    }
}
