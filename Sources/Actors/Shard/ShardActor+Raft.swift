public import Cluster
public import Storage
public import Wire

/// Where a shard's Raft messages leave the node (``RaftTransport`` in a node).
public protocol RaftOutbound: Sendable {
    /// Queues `message` of `shard`'s group for `node`; never waits (delivery is best effort).
    func send(shard: Int, _ message: RaftMessage, to node: NodeID)
    /// Sends one chunk of a snapshot to `node` and returns its answer; nil when none came.
    func sendSnapshotChunk(_ chunk: Infranaut_V1_RaftSnapshotChunk, to node: NodeID) async
        -> Infranaut_V1_RaftSnapshotChunkResponse?
}

/// What connects a shard's replica to the rest of the node: the transport its messages leave by
/// and the ticker that drives its timer.
public struct RaftLinks: Sendable {
    let transport: any RaftOutbound
    let ticker: RaftTicker

    public init(transport: any RaftOutbound, ticker: RaftTicker) {
        self.transport = transport
        self.ticker = ticker
    }
}

/// The Raft shell: events into the core, the core's directives executed in order (persist as a
/// barrier), committed entries applied to the state machine.
extension ShardActor {
    /// Connects the shard to the node and starts its replica, if it holds one.
    public func attach(_ links: RaftLinks, onFailure: @escaping @Sendable (String) -> Void) {
        self.links = links
        self.onFailure = onFailure
        guard raft != nil else { return }
        execute(raft!.start(now: RaftClock.now))
    }

    /// Founds the shard's group with this node as its only voter: the first node of a new cluster
    /// does this for every shard, once. The configuration entry is written before anything else.
    public static func bootstrapWrites(shard: Int, node: NodeID, store: ShardStore, into batch: inout WriteBatch)
        throws(StorageError)
    {
        let log = RaftLogStore(store: store, shard: shard)
        let entry = RaftEntry(term: 1, index: 1, body: .configuration([node]))
        try log.add(RaftPersist(term: 1, votedFor: nil, entries: [entry]), to: &batch)
    }

    // MARK: Events

    /// A message from another replica of the group. A node that holds no replica yet creates an
    /// empty one: that is how a node the leader added receives its first entries.
    func receive(_ message: RaftMessage) {
        guard state == .serving else { return }
        if raft == nil {
            raft = Self.replica(node: nodeID, shard: shard, durable: RaftDurableState(), settings: settings.raft)
            execute(raft!.start(now: RaftClock.now))
        }
        execute(raft!.onMessage(message, now: RaftClock.now))
    }

    /// The timer: the core's, and the end of the grace of proposals after a step-down.
    public func tick() {
        guard state == .serving, raft != nil else { return }
        let now = RaftClock.now
        if let at = steppedDownAt, now - at >= abandonAfterStepDown {
            abandonWaiters()
        }
        execute(raft!.onTick(now: now))
    }

    /// Proposes `command` (empty: a read marker) and waits until its entry is applied. nil when it
    /// was not committed at the index and term it was accepted at (a leader change), or this
    /// replica does not lead.
    func propose(_ command: [UInt8], op: Infranaut_V1_StoredOp? = nil) async -> Applied? {
        guard state == .serving, raft != nil else { return nil }
        let (outcome, out) = raft!.propose(command, now: RaftClock.now)
        if case .accepted(let index, let term) = outcome, let op { proposedOps[index] = (term, op) }
        execute(out)
        guard case .accepted(let index, let term) = outcome else { return nil }
        return await withCheckedContinuation { continuation in
            waiters[index, default: []].append(Waiter(term: term, continuation: continuation))
        }
    }

    /// Brings the group's voters one step closer to `desired` (see `GroupPlan`) when this replica
    /// leads and no change is in progress.
    /// A quiet group is woken when the membership view no longer sees a node it depends on alive:
    /// a follower's leader, or one of a leader's voters.
    func reconcile(desired: [NodeID], liveness: [NodeID: GroupPlan.Liveness]) {
        guard state == .serving, let quiet = raft else { return }
        if quiet.isQuiescent {
            let doubted =
                quiet.role == .leader
                ? quiet.voters.contains { $0 != nodeID && liveness[$0] != .alive }
                : quiet.leader.map { liveness[$0] != .alive } ?? true
            if doubted { execute(raft!.wake(now: RaftClock.now)) }
        }
        guard let current = raft, current.role == .leader, !current.isTransferringLeadership else { return }
        guard
            let change = GroupPlan.next(
                voters: current.voters, leader: nodeID, desired: desired, liveness: { liveness[$0] ?? .gone },
                caughtUp: { current.hasCaughtUp($0) })
        else { return }
        let now = RaftClock.now
        switch change {
        case .add(let node):
            let (outcome, out) = raft!.proposeConfiguration(current.voters.union([node]), now: now)
            execute(out)
            if case .accepted = outcome { logger.info("adding a replica", metadata: ["node": "\(node)"]) }
        case .remove(let node):
            let (outcome, out) = raft!.proposeConfiguration(current.voters.subtracting([node]), now: now)
            execute(out)
            if case .accepted = outcome { logger.info("removing a replica", metadata: ["node": "\(node)"]) }
        case .transferLeadership(let target):
            let (started, out) = raft!.transferLeadership(to: target, now: now)
            execute(out)
            if started { logger.info("handing leadership over", metadata: ["to": "\(target)"]) }
        }
    }

    /// Hands leadership to another voter, when this replica leads (a node that leaves).
    func transferLeadershipIfLeading() {
        guard state == .serving, let current = raft, current.role == .leader else { return }
        guard let target = current.voters.filter({ $0 != nodeID }).sorted().first else { return }
        execute(raft!.transferLeadership(to: target, now: RaftClock.now).1)
    }

    // MARK: Directives

    /// Executes the core's directives. The timer is re-armed at once (it has no effect outside the
    /// node). Without a persist among them and none in flight, the rest run here and now (the common
    /// case of heartbeats and their answers); otherwise they queue for the pump, which runs them in
    /// order behind the durable writes.
    func execute(_ out: [RaftDirective]) {
        defer { afterEvent() }
        if !pumping && !out.contains(where: \.isPersist) {
            for directive in out { run(directive) }
            return
        }
        for directive in out {
            if case .scheduleTick = directive {
                run(directive)
            } else {
                directives.append(directive)
            }
        }
        guard !pumping, !directives.isEmpty else { return }
        pumping = true
        inBackground { await self.pump() }
    }

    /// After every event: wakes requests that waited for a transfer to end, and starts the grace of
    /// proposals when this replica stopped leading. Their entries usually commit under the next
    /// leader and are applied here too, which answers them; those that are not (a partition, a lost
    /// entry) are told to retry with the same key after ``abandonAfterStepDown``.
    private func afterEvent() {
        if raft?.isTransferringLeadership != true, !transferWaiters.isEmpty {
            for waiter in transferWaiters { waiter.resume() }
            transferWaiters = []
        }
        if raft?.role == .leader || waiters.isEmpty {
            steppedDownAt = nil
        } else if steppedDownAt == nil {
            let now = RaftClock.now
            steppedDownAt = now
            scheduleTick(at: coreTickAt ?? now + abandonAfterStepDown)
        }
    }

    /// Arms the ticker for the core's next tick, or earlier for the end of a step-down's grace.
    private func scheduleTick(at deadline: Duration) {
        var at = deadline
        if let since = steppedDownAt { at = min(at, since + abandonAfterStepDown) }
        links?.ticker.schedule(shard: shard, at: at)
    }

    /// Runs one directive that is not a persist.
    private func run(_ directive: RaftDirective) {
        switch directive {
        case .persist: preconditionFailure("persists run in the pump")
        case .send(let message, let to): links?.transport.send(shard: shard, message, to: to)
        case .apply(let entries): apply(entries)
        case .scheduleTick(let at):
            coreTickAt = at
            scheduleTick(at: at)
        case .sendSnapshot(let peer, _, let term):
            startSnapshot(to: peer, term: term)
        }
    }

    /// Executes queued directives. Each round takes everything queued: its persists go into one
    /// write batch (in order) and become durable together, then the rest run in order. Every send
    /// and apply therefore happens after every persist that preceded it (the barrier), some a little
    /// later than they could (those queued before a persist of the same round), never earlier; and
    /// a burst of proposals costs one fsync per round, not one each.
    private func pump() async {
        defer { pumping = false }
        while !directives.isEmpty {
            let round = directives
            directives = []
            var batch = WriteBatch()
            var persists = 0
            do throws(StorageError) {
                for case .persist(let persist) in round {
                    try raftLog.add(persist, to: &batch)
                    if let snapshot = persist.snapshot {
                        try addInstall(of: snapshot, to: &batch)
                        // No new checkpoint starts while an install is pending.
                        await awaitCheckpointEnd()
                    }
                    persists += 1
                }
                if persists > 0 { try await writer.write(batch) }
            } catch {
                directives = []
                fail("could not make the shard's raft log durable: \(error)")
                return
            }
            for directive in round {
                if case .persist(let persist) = directive {
                    // A received snapshot becomes the state machine at its persist's place.
                    if let snapshot = persist.snapshot { installPending(snapshot) }
                } else {
                    run(directive)
                }
            }
        }
    }

    /// Applies committed entries to the state machine, in order, and answers the proposals that
    /// waited for them.
    private func apply(_ entries: [RaftEntry]) {
        defer { checkpointIfDue() }
        for entry in entries where entry.index > appliedIndex {
            // After a failure nothing more is applied: the state machine stays where it stopped.
            if case .failed = state { return }
            precondition(entry.index == appliedIndex + 1, "entries are applied in index order, once")
            appliedIndex = entry.index
            var result: ShardActor.Applied?
            if case .command(let bytes) = entry.body {
                bytesSinceCheckpoint += bytes.count
                result = bytes.isEmpty ? .marker : applyOp(bytes, entry: entry)
            }
            guard let list = waiters.removeValue(forKey: entry.index) else { continue }
            for waiter in list {
                // The same index with another term: the proposal was replaced by a new leader's log.
                waiter.continuation.resume(returning: waiter.term == entry.term ? result : nil)
            }
        }
    }

    /// Applies one op, or skips it when its key is already remembered (a retry that reached the
    /// log twice): deterministic, so every replica agrees.
    private func applyOp(_ bytes: [UInt8], entry: RaftEntry) -> ShardActor.Applied? {
        var op: Infranaut_V1_StoredOp
        if let proposed = proposedOps.removeValue(forKey: entry.index), proposed.term == entry.term {
            op = proposed.op  // this leader's own proposal: the bytes are its encoding
        } else {
            do throws(StorageError) {
                op = try decode(Infranaut_V1_StoredOp.self, bytes, "op at index \(entry.index) of shard \(shard)")
            } catch {
                // Committed on a majority, so every replica holds these bytes: stop rather than diverge.
                fail("a committed entry cannot be decoded: \(error)")
                return nil
            }
        }
        // Keys expire by the ops' own acceptance times, so every replica forgets the same keys at
        // the same index.
        let windowMs = settings.idempotencyWindow.components.seconds * 1000
        _ = remembered.expire(acceptedBefore: op.acceptedUnixMs - windowMs)
        // Deleted models whose retention ended go by the same clock.
        let purged = models.purge(deletedBefore: op.acceptedUnixMs)
        if purged > 0 { store.modelCount.add(-purged) }
        do throws(StorageError) {
            if op.windowTick {
                try models.tickWindows(at: op.acceptedUnixMs)
                return .marker
            }
            if op.hasAlertsDelivered {
                try models.alertsDelivered(op.alertsDelivered)
                return .marker
            }
            if op.hasModelSpec {
                if try models.apply(spec: op.modelSpec, acceptedUnixMs: op.acceptedUnixMs) { store.modelCount.add(1) }
                let held = models.residentState(op.modelSpec.modelID)
                return .spec(generation: held?.generation ?? 0, purgeAfterUnixMs: held?.purgeAfterUnixMs ?? 0)
            }
            let key = IdempotencyKey(model: op.batch.modelID, key: op.idempotencyKey)
            if let earlier = remembered[key] { return .op(earlier, replayed: true) }
            op.sequence = entry.index
            op.term = entry.term
            var record = Self.record(of: op)
            if op.batch.labels {
                record.labels = try models.applyLabels(op)
            } else if try models.apply(op) {
                store.modelCount.add(1)
            }
            remembered.remember(key, record)
            return .op(record, replayed: false)
        } catch {
            // A parked model, or a kept prediction, that cannot be read back: the entry cannot be
            // applied, so stop rather than diverge. A batch of labels may have joined some of its
            // labels in memory by then; the failed shard applies and checkpoints nothing more, so
            // that never reaches storage, and a restart replays the entry from the checkpoint.
            fail(
                "the entry at index \(entry.index) cannot be applied: its parked model or a kept prediction cannot be read back from storage (\(error))"
            )
            return nil
        }
    }

    static func record(of op: Infranaut_V1_StoredOp) -> Infranaut_V1_IdempotencyRecord {
        .with {
            $0.acceptedUnixMs = op.acceptedUnixMs
            $0.sequence = op.sequence
            $0.rowsAccepted = UInt64(op.batch.rowCount)
            $0.typeMismatchCount = op.typeMismatches.reduce(0, +)
        }
    }
}

extension RaftDirective {
    var isPersist: Bool {
        if case .persist = self { return true }
        return false
    }
}
