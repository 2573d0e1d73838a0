import Monitoring
import Storage
public import Wire

/// The follower side of replication: ops and snapshots from the shard's primary, and this
/// replica's state for a primary that is behind it (invariants in ShardReplication.swift).
extension ShardActor {
    /// Applies ops from the shard's primary.
    public func receiveReplicate(_ request: Infranaut_V1_ReplicateRequest) async -> Infranaut_V1_ReplicateResponse {
        guard case .serving = state else {
            return .with {
                $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is not serving")
            }
        }
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
            return .with {
                $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
            }
        }
        let claimed = TermPromise(term: request.term, holder: request.fromNode)
        if claimed != promise {
            // A new primary: promise its term before answering (and before applying its ops), so no
            // older primary can write here any more.
            becomeFollower()
            guard await promiseDurably(claimed) else {
                return .with {
                    $0.status = Infranaut_V1_Status(
                        code: .unavailable, message: "shard \(shard) could not store the term promise")
                }
            }
            // The write may have let another request in.
            guard promise == claimed, !activities.isRunning(.replicaWrite), !hasPendingOps else {
                return .with {
                    $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
                }
            }
        }
        func mismatch() -> Infranaut_V1_ReplicateResponse { answer(.mismatch) }
        guard request.prevSequence <= appliedSequence, termAt(request.prevSequence) == request.prevTerm else {
            return mismatch()
        }
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
                return .with {
                    $0.status = Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
                }
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
                return .with {
                    $0.status = Infranaut_V1_Status(
                        code: .unavailable, message: "shard \(shard) could not store the ops")
                }
            }
            for op in fresh {
                applyInMemory(op)
                remember(op)
            }
            log.next = appliedSequence + 1
            primary.replicatedThrough = appliedSequence
        }
        return answer(.applied)
    }

    /// Replaces this replica's state of the shard with a snapshot from its primary.
    public func receiveSnapshot(_ request: Infranaut_V1_InstallSnapshotRequest) async
        -> Infranaut_V1_InstallSnapshotResponse
    {
        guard request.snapshot.shard == UInt32(shard) else {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .invalidArgument,
                    message: "snapshot of shard \(request.snapshot.shard) sent to shard \(shard)")
            }
        }
        guard promise.admits(term: request.term, from: request.fromNode) else {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "shard \(shard) promised term \(promise.term) to \(promise.holder)")
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
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "shard \(shard) already holds a newer state from \(request.fromNode)")
            }
        }
        becomeFollower()
        guard await promiseDurably(claimed), promise == claimed else {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "shard \(shard) could not store the term promise; retry")
            }
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
    func becomeFollower() {
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
            $0.models = models.states.values.map(\.snapshot)
            $0.idempotency = remembered.snapshotEntries
        }
    }

    /// Replaces the shard's state, on disk (one atomic batch) and in memory.
    func install(_ snapshot: Infranaut_V1_ShardSnapshot) async -> Infranaut_V1_Status {
        guard case .serving = state else {
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is not serving")
        }
        guard !activities.isRunning(.replicaWrite), !hasPendingOps, !activities.isRunning(.checkpoint) else {
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
        }
        var loaded: [String: ModelState] = [:]
        for model in snapshot.models {
            do throws(ProfileDecodingError) {
                loaded[model.modelID] = try ModelState(snapshot: model)
            } catch {
                return Infranaut_V1_Status(
                    code: .invalidArgument, message: "snapshot model \(model.modelID): \(error.description)")
            }
        }
        guard activities.begin(.replicaWrite) else {
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) is busy; retry")
        }
        defer { finish(.replicaWrite) }
        do throws(StorageError) {
            var batch = WriteBatch()
            let (from, to) = StorageKeys.Shard.range(shard)
            batch.deleteRange(from: from, to: to, in: store.ops)
            batch.deleteRange(from: from, to: to, in: store.models)
            batch.deleteRange(from: from, to: to, in: store.idempotency)
            for model in snapshot.models {
                batch.put(
                    StorageKeys.Models.key(shard: shard, model: model.modelID), try encode(model), in: store.models)
            }
            for entry in snapshot.idempotency {
                batch.put(
                    StorageKeys.Idempotency.key(shard: shard, model: entry.modelID, key: entry.key),
                    try encode(entry.record), in: store.idempotency)
            }
            batch.put(
                StorageKeys.Checkpoint.key(shard: shard),
                StorageKeys.Checkpoint.value(sequence: snapshot.applied, term: snapshot.lastTerm), in: store.meta)
            try await writer.write(batch)
        } catch {
            fail("snapshot install failed: \(error)")
            return Infranaut_V1_Status(code: .unavailable, message: "shard \(shard) could not store the snapshot")
        }
        // Ops waiting for their followers were replaced by another history: they are not
        // acknowledged (their clients retry, and the retry is applied in the new history).
        failReplicationWaiters()
        store.modelCount.add(models.replace(with: loaded))
        log = LogPosition(applied: snapshot.applied, lastTerm: snapshot.lastTerm, checkpoint: snapshot.applied)
        primary.replicatedThrough = snapshot.applied
        primary.writingTerm = nil
        primary.outbox.removeAll()
        primary.followerAcked.removeAll()
        remembered = IdempotencyTable(snapshot.idempotency.map { ($0.modelID, $0.key, $0.record) })
        return .ok
    }
}
