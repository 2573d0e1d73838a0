import Foundation
public import Logging
public import Storage
public import Wire

/// Settings shared by a node's shards.
public struct ShardSettings: Sendable {
    /// How long an idempotency key is remembered after its request was applied. A retry within
    /// this window is answered with the original outcome and applied once. Default 10 minutes.
    public var idempotencyWindow: Duration = .seconds(600)
    /// A checkpoint is taken once this many ops were applied since the last one. Default 2,000.
    public var checkpointEveryOps = 2_000
    /// Features (column names) one model may hold. A batch that would take a model past it is
    /// refused whole with INVALID_ARGUMENT; batches of known columns still pass when a model holds
    /// more (a lower limit on a later start). Every feature costs memory on every replica and a
    /// line in every status reply. Default 1,000.
    public var maxFeaturesPerModel = 1_000
    /// Models the node's shards may hold together; the first batch of one more is refused whole
    /// with INVALID_ARGUMENT (see ``ModelCount``). Default 10,000.
    public var maxModels = 10_000

    public init() {}
}

/// One shard: the models hashed to it, their state in memory, and their op log in RocksDB.
///
/// Write path invariants:
/// 1. An ingest is acknowledged only after its op and its idempotency record are durable in the
///    WAL (one atomic batch through the ``GroupCommitWriter``, fsync'd).
/// 2. Ops are applied to memory strictly in sequence order, and an ack is sent only after the op
///    was applied, so a `status` that follows an ack sees it.
/// 3. A storage write failure stops the shard (state `.failed`): every later request gets a
///    retryable error, and a restart recovers from what is durable. Nothing acknowledged is lost,
///    and a retry of an op that became durable without an ack is answered from its record.
public actor ShardActor {
    public enum State: Sendable, Equatable {
        case serving
        case stopping
        case failed(String)
    }

    private struct Pending {
        var op: Infranaut_V1_StoredOp
        var durable = false
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    typealias IdempotencyKey = IdempotencyTable.Key

    public let shard: Int
    let store: ShardStore
    let writer: GroupCommitWriter
    private let settings: ShardSettings
    let logger: Logger
    public private(set) var state: State = .serving

    /// The models in memory (``ShardModels``).
    var models: ShardModels
    /// Where the op log stands (``LogPosition``).
    var log: LogPosition
    private var pending: [UInt64: Pending] = [:]
    var remembered: IdempotencyTable
    private var inFlight: [IdempotencyKey: [CheckedContinuation<Infranaut_V1_IngestResponse, Never>]] = [:]

    // Replication (ShardReplication.swift; docs/replication.md).
    /// The highest term this replica promised, durable in the meta column family.
    var promise: TermPromise
    /// Called once when the shard stops after a storage failure (the node fail-stops on it).
    var onFailure: (@Sendable (String) -> Void)?
    var link: ReplicationLink?
    /// What the shard keeps while it acts as its shard's primary (``PrimaryRole``).
    var primary = PrimaryRole()
    /// Which exclusive activities run (``ShardActivities``), and the shard's own background tasks.
    var activities = ShardActivities()

    /// Rebuilds the shard from its checkpoint and op log. Runs before the shard serves anything.
    public init(shard: Int, store: ShardStore, writer: GroupCommitWriter, settings: ShardSettings, logger: Logger)
        throws(StorageError)
    {
        self.shard = shard
        self.store = store
        self.writer = writer
        self.settings = settings
        var logger = logger
        logger[metadataKey: "shard"] = "\(shard)"
        self.logger = logger

        let recovered = try ShardRecovery.recover(shard: shard, store: store)
        models = ShardModels(recovered.models, dirty: recovered.replayed > 0)
        log = LogPosition(
            applied: recovered.lastSequence, lastTerm: recovered.lastTerm, checkpoint: recovered.checkpoint)
        promise = try store.promise(shard: shard)
        primary.replicatedThrough = recovered.lastSequence
        remembered = IdempotencyTable(recovered.idempotency)
        store.modelCount.add(recovered.models.count)
        let modelCount = recovered.models.count
        let keyCount = recovered.idempotency.count
        logger.debug(
            "recovered",
            metadata: [
                "models": "\(modelCount)", "checkpoint": "\(recovered.checkpoint)",
                "replayed": "\(recovered.replayed)", "keys": "\(keyCount)",
            ])
    }

    // MARK: - Ingest

    /// Applies a validated ingest request durably and returns the response to send.
    public func ingest(_ request: Infranaut_V1_IngestRequest) async -> Infranaut_V1_IngestResponse {
        guard state == .serving else { return failure(unavailableMessage) }
        let model = request.batch.modelID
        let key = IdempotencyKey(model: model, key: request.idempotencyKey)
        if remembered[key] == nil, inFlight[key] != nil { return await joinInFlight(key) }
        // Before anything is written or replayed as primary, the shard claims its term and adopts
        // a follower's newer state (a key this replica holds may not be in that history).
        if primary.writingTerm == nil {
            guard await establishTerm() else {
                return failure(
                    "shard \(shard) is taking over as primary and could not reach its followers yet; retry with the same idempotency key"
                )
            }
        }
        if let done = remembered[key] {
            // Applied here; answered as a replay only once its op is on every follower too.
            guard await awaitReplicated(done.sequence) else { return failure(notReplicatedMessage) }
            return replay(done)
        }
        if inFlight[key] != nil { return await joinInFlight(key) }
        inFlight[key] = []

        // The limits are checked against the projection, in the same actor turn that extends it, so
        // concurrent batches are counted in order and cannot pass a limit together. Only the
        // primary checks: a replica applies what its primary accepted.
        var projection: ProjectedSchema
        do throws(WireError) {
            projection = try admit(request.batch)
        } catch {
            inFlight[key] = nil
            return .with {
                $0.status = Infranaut_V1_Status(code: error.code, message: error.message)
                $0.shard = UInt32(shard)
            }
        }
        let normalized = projection.normalize(request.batch)
        models.project(model, projection)

        let sequence = log.takeNext()
        let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
        let term = primary.writingTerm ?? lastTerm + 1
        let op = Infranaut_V1_StoredOp.with {
            $0.sequence = sequence
            $0.term = term
            $0.idempotencyKey = request.idempotencyKey
            $0.batch = normalized.batch
            $0.typeMismatches = normalized.mismatchCounts
            $0.acceptedUnixMs = nowMs
        }
        let record = Infranaut_V1_IdempotencyRecord.with {
            $0.acceptedUnixMs = nowMs
            $0.sequence = sequence
            $0.rowsAccepted = UInt64(request.batch.rowCount)
            $0.typeMismatchCount = normalized.totalMismatches
        }
        pending[sequence] = Pending(op: op)

        var response: Infranaut_V1_IngestResponse
        do throws(StorageError) {
            var batch = WriteBatch()
            batch.put(StorageKeys.Ops.key(shard: shard, sequence: sequence), try encode(op), in: store.ops)
            batch.put(
                StorageKeys.Idempotency.key(shard: shard, model: model, key: key.key), try encode(record),
                in: store.idempotency)
            try await writer.write(batch)
            pending[sequence]?.durable = true
            drainApplied()
            let applied = appliedSequence >= sequence ? true : await waitApplied(sequence)
            if !applied {
                response = failure(
                    "the shard stopped before the batch was applied; retry with the same idempotency key")
            } else if !(await awaitReplicated(sequence)) {
                response = failure(notReplicatedMessage)
            } else {
                response = .with {
                    $0.status = .ok
                    $0.rowsAccepted = record.rowsAccepted
                    $0.sequence = sequence
                    $0.shard = UInt32(shard)
                    $0.typeMismatchCount = record.typeMismatchCount
                    $0.typeMismatches = normalized.firstMismatches
                }
            }
        } catch {
            fail("could not make a batch durable: \(error)")
            response = failure(
                "the node could not make the batch durable (\(error.code.rawValue)); retry with the same idempotency key"
            )
        }
        for waiter in inFlight.removeValue(forKey: key) ?? [] { waiter.resume(returning: response) }
        if state == .serving && Int(appliedSequence - checkpointSequence) >= settings.checkpointEveryOps {
            inBackground { await self.checkpoint() }
        }
        return response
    }

    /// Checks the feature and model limits for `batch`, reserving the model's place in the node's
    /// count when it is new; returns the model's projection for the caller to extend (and store) in
    /// the same actor turn, or throws the refusal.
    private func admit(_ batch: Infranaut_V1_TelemetryBatch) throws(WireError) -> ProjectedSchema {
        let model = batch.modelID
        let known = models.knows(model)
        let projection = models.projection(of: model)
        if let refusal = settings.featureLimitError(
            model: model, current: projection.featureCount, adding: projection.newNames(in: batch))
        {
            throw refusal
        }
        if !known, !store.modelCount.reserve(limit: settings.maxModels) {
            throw settings.modelLimitError(model: model, current: store.modelCount.value)
        }
        return projection
    }

    var unavailableMessage: String {
        switch state {
        case .serving: ""
        case .stopping: "the node is shutting down; retry against another node or after it restarts"
        case .failed(let reason): "shard \(shard) stopped after a storage failure (\(reason)); restart the node"
        }
    }

    private func failure(_ message: String) -> Infranaut_V1_IngestResponse {
        .with {
            $0.status = Infranaut_V1_Status(code: .unavailable, message: message)
            $0.shard = UInt32(shard)
        }
    }

    private func replay(_ record: Infranaut_V1_IdempotencyRecord) -> Infranaut_V1_IngestResponse {
        .with {
            $0.status = .ok
            $0.rowsAccepted = record.rowsAccepted
            $0.sequence = record.sequence
            $0.shard = UInt32(shard)
            $0.typeMismatchCount = record.typeMismatchCount
            $0.replayed = true
        }
    }

    /// Waits for the outcome of the same key being applied right now (a client retry racing its
    /// original) and answers it as a replay.
    private func joinInFlight(_ key: IdempotencyKey) async -> Infranaut_V1_IngestResponse {
        var response = await withCheckedContinuation { inFlight[key, default: []].append($0) }
        if response.status.code == .ok { response.replayed = true }
        return response
    }

    /// Remembers `op`'s key with its outcome; called in the same step as the op is applied.
    func remember(_ op: Infranaut_V1_StoredOp) {
        remembered.remember(IdempotencyKey(model: op.batch.modelID, key: op.idempotencyKey), Self.record(of: op))
    }

    /// Applies every durable op that directly follows the applied prefix.
    private func drainApplied() {
        while let next = pending[appliedSequence + 1], next.durable {
            let op = next.op
            pending[appliedSequence + 1] = nil
            applyInMemory(op)
            // Remembered in the same step as applied, so no snapshot holds the op without its key.
            remember(op)
            if link != nil { primary.outbox.append(op) }
            for waiter in next.waiters { waiter.resume(returning: true) }
        }
    }

    /// Applies one op to memory; the caller made it durable and ensures sequence order.
    func applyInMemory(_ op: Infranaut_V1_StoredOp) {
        if models.apply(op) { store.modelCount.add(1) }
        log.apply(sequence: op.sequence, term: op.term)
    }

    /// Whether ops of local ingests are in progress (made durable or applied right now).
    var hasPendingOps: Bool { !pending.isEmpty }

    private func waitApplied(_ sequence: UInt64) async -> Bool {
        guard state == .serving else { return false }
        return await withCheckedContinuation { continuation in
            pending[sequence, default: Pending(op: .init())].waiters.append(continuation)
        }
    }

    func fail(_ reason: String) {
        guard state != .failed(reason) else { return }
        logger.error("shard stopped", metadata: ["reason": "\(reason)"])
        state = .failed(reason)
        onFailure?(reason)
        for (sequence, entry) in pending {
            for waiter in entry.waiters { waiter.resume(returning: false) }
            pending[sequence]?.waiters = []
        }
    }

    // MARK: - Reads

    /// The whole status of `model` (every feature; for in-process readers).
    public func status(model: String) -> Infranaut_V1_ModelStatus? {
        models[model]?.status(shard: shard)
    }

    /// One page of `request.model_id`'s status (``StatusPaging``); nil when the shard holds no
    /// such model.
    public func status(_ request: Infranaut_V1_StatusRequest) -> Infranaut_V1_StatusResponse? {
        models[request.modelID]?.statusPage(shard: shard, after: request.featuresAfter, limit: request.featureLimit)
    }

    public var modelIDs: [String] { Array(models.states.keys) }

    /// The last op applied to memory.
    public var appliedSequence: UInt64 { log.applied }
    /// The term of the op at `appliedSequence` (0 before the first op).
    public var lastTerm: UInt64 { log.lastTerm }
    /// The last op covered by a durable checkpoint.
    public var checkpointSequence: UInt64 { log.checkpoint }

    /// The replication term this replica promised last (0: never).
    public var promisedTerm: UInt64 { promise.term }

    /// The receipts of `keys` for `model` and the model's counts, read in one actor turn so the
    /// counts and the receipts describe the same state. A key is remembered exactly when its op is
    /// applied here (op and record are written and installed together), for the idempotency window.
    public func receipts(model: String, keys: [String]) -> Infranaut_V1_ReceiptsResponse {
        .with {
            $0.status = .ok
            $0.receipts = keys.compactMap { key in
                remembered[IdempotencyKey(model: model, key: key)].map { found in
                    .with {
                        $0.idempotencyKey = key
                        $0.sequence = found.sequence
                        $0.rowsAccepted = found.rowsAccepted
                    }
                }
            }
            $0.modelBatches = models[model]?.batches ?? 0
            $0.modelRows = models[model]?.rows ?? 0
        }
    }

    // MARK: - Checkpoints

    /// Writes the state of every model changed since the last checkpoint, together with the
    /// checkpoint sequence, and drops the ops it covers (one atomic batch).
    public func checkpoint() async {
        if case .failed = state { return }
        // Not while another replica's state is being installed: this checkpoint's batch would land
        // after the snapshot's and write the replaced history's models over it.
        guard !activities.isRunning(.replicaWrite), appliedSequence > checkpointSequence, activities.begin(.checkpoint)
        else { return }
        defer { finish(.checkpoint) }
        let upTo = appliedSequence
        let termAtUpTo = lastTerm
        let dirty = models.takeDirty()
        do throws(StorageError) {
            var batch = WriteBatch()
            for model in dirty {
                guard let state = models[model] else { continue }
                batch.put(
                    StorageKeys.Models.key(shard: shard, model: model), try encode(state.snapshot), in: store.models)
            }
            batch.put(
                StorageKeys.Checkpoint.key(shard: shard),
                StorageKeys.Checkpoint.value(sequence: upTo, term: termAtUpTo), in: store.meta)
            batch.deleteRange(
                from: StorageKeys.Ops.key(shard: shard, sequence: 0),
                to: StorageKeys.Ops.key(shard: shard, sequence: upTo + 1), in: store.ops)
            pruneIdempotency(into: &batch)
            try await writer.write(batch)
            log.checkpointed(through: upTo)
        } catch {
            models.restoreDirty(dirty)
            fail("checkpoint write failed: \(error)")
        }
    }

    private func pruneIdempotency(into batch: inout WriteBatch) {
        let windowMs = settings.idempotencyWindow.components.seconds * 1000
        let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - windowMs
        for key in remembered.expire(acceptedBefore: cutoff) {
            batch.delete(
                StorageKeys.Idempotency.key(shard: shard, model: key.model, key: key.key), in: store.idempotency)
        }
    }

    /// Refuses new ingests (retryable), then takes a final checkpoint.
    public func stop() async {
        if case .failed = state { return }
        state = .stopping
        await awaitBackground()
        await awaitEnd(of: .checkpoint)
        await checkpoint()
    }
}
