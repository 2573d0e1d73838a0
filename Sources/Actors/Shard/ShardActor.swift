public import Cluster
import Foundation
public import Logging
public import Storage
public import Wire

/// Settings shared by a node's shards.
public struct ShardSettings: Sendable {
    /// How long an idempotency key is remembered after its request was applied. A retry within
    /// this window is answered with the original outcome and applied once. Default 10 minutes.
    public var idempotencyWindow: Duration = .seconds(600)
    /// Features (column names) one model may hold. A batch that would take a model past it is
    /// refused whole with INVALID_ARGUMENT; batches of known columns still pass when a model holds
    /// more (a lower limit on a later start). Every feature costs memory on every replica and a
    /// line in every status reply. Default 1,000.
    public var maxFeaturesPerModel = 1_000
    /// Models the node's shards may hold together; the first batch of one more is refused whole
    /// with INVALID_ARGUMENT (see ``ModelCount``). Default 10,000.
    public var maxModels = 10_000
    /// The default alert rules this node gives the models whose specs its shards accept as leader
    /// (`start --alert-defaults`), stamped into each spec so every replica judges the same rules;
    /// nil: the built-in defaults, not stamped (docs/alerting.md, "Cluster defaults").
    public var alertDefaults: [Infranaut_V1_AlertRule]?
    /// Called with each checkpoint's duration (for the metrics).
    public var onCheckpoint: (@Sendable (Duration) -> Void)?
    /// How long a deleted model's state is kept, so that applying its spec again undoes the
    /// deletion. Default 24 h.
    public var deletedModelRetention: Duration = .seconds(86_400)
    /// A checkpoint is taken once this many entries were applied since the last one. Default 2,000.
    public var checkpointEveryEntries = 2_000
    /// ... or once entries of this many command bytes were (the core holds its log in memory until
    /// a checkpoint lets it go, and a node holds hundreds of shards). Default 1 MiB.
    public var checkpointEveryBytes = 1 << 20
    /// The longest the periodic checkpoint waits for the log to grow to a quarter of the last
    /// checkpoint's size (``ShardActor/periodicCheckpoint()``). Default 60 s.
    public var checkpointMaxDelay: Duration = .seconds(60)
    /// Entries a leader keeps in the log behind a checkpoint for followers that do not hold them
    /// yet, so that a follower a little behind catches up from the log rather than by a whole
    /// snapshot: at most this many, and at most `logRetainedBytes` of commands. Entries every
    /// follower holds are not kept, and a follower keeps none. Default 128 entries, 64 KiB (a node
    /// holds a thousand shards: 256 KiB each was a quarter of a GB with a model per shard;
    /// docs/benchmarks.md, issue 11).
    public var logRetainedEntries: UInt64 = 128
    public var logRetainedBytes = 64 << 10
    /// The most bytes of a snapshot a replica holds in memory while it is being received. Default
    /// 1 GiB.
    public var maxIncomingSnapshotBytes = 1 << 30
    /// The most bytes of checkpoint a snapshot chunk carries; a model larger than this travels in
    /// pieces over several chunks. Default 4 MiB (peer frames are limited to 64 MiB).
    public var snapshotChunkBytes = 4 << 20
    /// The timing of every shard's Raft group (the same on every node of a cluster). Idle groups go
    /// quiet; the node wakes them from its membership view (``ShardActor/reconcile(desired:liveness:)``).
    public var raft = RaftSettings()
    /// How long a model may go without an op or a read before its shard keeps it only in RocksDB
    /// (parked: loaded again by its next op, read or window deadline), so that memory follows the
    /// models in use rather than every model the node holds. nil keeps every model in memory.
    /// Models loaded from the checkpoint at start are parked until used. Default 60 s.
    public var parkIdleModelsAfter: Duration? = .seconds(60)

    public init() {
        raft.quiesceWhenIdle = true
    }
}

/// A read refused because the model it needs is parked and cannot be loaded right now (retryable).
struct ModelUnavailable: Error {
    var message: String
    var status: Infranaut_V1_Status { Infranaut_V1_Status(code: .unavailable, message: message) }
}

/// A replica's view of its shard's Raft group.
public struct ShardGroupView: Sendable {
    public var term: UInt64
    public var leader: NodeID?
    public var voters: Set<NodeID>
}

/// One shard on this node: the shell around this node's replica of the shard's Raft group
/// (docs/consensus.md), and the state machine the group's log drives: the models hashed to the
/// shard and the idempotency keys of the batches applied to them.
///
/// Invariants:
/// 1. An ingest is acknowledged only after its op was committed (durable on a majority of the
///    group's voters) and applied here at the index and term it was proposed at. A proposal
///    overtaken by a leader change is answered "retry with the same key", never acknowledged.
/// 2. The state machine is a function of the committed log: ops are applied in index order on every
///    replica, and an op whose idempotency key is already remembered is skipped on every replica
///    (its proposer answers with the first op's outcome), so a retry through another leader is
///    applied once and answered identically.
/// 3. The core's `persist` directives are barriers: the shell executes directives strictly in
///    order, and nothing after a persist (a send, an apply) happens before the persist is durable
///    in the WAL (one batch through the ``GroupCommitWriter``).
/// 4. A storage write failure stops the shard (state `.failed`): every later request gets a
///    retryable error, and the node fail-stops; a restart recovers from what is durable.
/// 5. Reads that must not return replaced state (`status`, `receipts`) go through the log: the
///    leader proposes an empty marker entry and serves once it applied it in its own term, so the
///    read sees every write acknowledged before it began, by this or any earlier leader.
public actor ShardActor {
    public enum State: Sendable, Equatable {
        case serving
        case stopping
        case failed(String)
    }

    /// Who serves the shard's requests, as this replica knows it.
    public enum Leadership: Sendable, Equatable {
        /// This node leads the shard's group.
        case here
        /// Another node leads it (nil: none known right now).
        case elsewhere(NodeID?)
        /// This node holds no replica of the shard.
        case notAReplica
    }

    /// What applying a proposal's entry gave, for whoever waits on it.
    enum Applied: Sendable {
        case op(Infranaut_V1_IdempotencyRecord, replayed: Bool)
        /// A spec change: the model's generation and purge time after it.
        case spec(generation: UInt64, purgeAfterUnixMs: Int64)
        case marker
    }

    struct Waiter {
        var term: RaftTerm
        var continuation: CheckedContinuation<Applied?, Never>
    }

    /// How long proposals of a replica that stopped leading wait for their entries to be applied
    /// under the next leader (which usually commits them: a transfer hands over a complete log)
    /// before they are answered "retry": two election timeouts.
    var abandonAfterStepDown: Duration { settings.raft.electionTimeout * 2 }

    typealias IdempotencyKey = IdempotencyTable.Key

    public let shard: Int
    let store: ShardStore
    let writer: GroupCommitWriter
    let settings: ShardSettings
    let logger: Logger
    let nodeID: NodeID
    public private(set) var state: State = .serving

    /// The models in memory (``ShardModels``): the state machine, with ``remembered``.
    var models: ShardModels
    var remembered = IdempotencyTable()
    /// This node's replica of the shard's group; nil while the node holds none.
    var raft: RaftInstance?
    let raftLog: RaftLogStore
    /// The node's Raft transport and ticker, once attached.
    var links: RaftLinks?
    /// Directives not executed yet, in order (``ShardActor+Raft.swift``).
    var directives: [RaftDirective] = []
    var pumping = false
    /// The index of the last entry applied to the state machine.
    var appliedIndex: RaftIndex = 0
    /// The index the shard's durable checkpoint (models and keys in RocksDB) is at.
    var checkpointIndex: RaftIndex = 0
    /// Command bytes applied since the last checkpoint started.
    /// Window results a checkpoint is writing (taken from the models, not yet durable): reads
    /// include them, so nothing acknowledged disappears from `windows` for the length of an fsync.
    var windowResultsInFlight: [String: ShardModels.TakenResults] = [:]
    /// Per model: the window start before which its results were last deleted (retention).
    var retentionCutoffs: [String: Int64] = [:]
    var bytesSinceCheckpoint = 0
    /// Bytes of model snapshots the last checkpoint wrote, and when it finished: a checkpoint is
    /// not due again before the log holds half as many bytes (``checkpointIfDue()``).
    var lastCheckpointBytes = 0
    var lastCheckpointAt: ContinuousClock.Instant?
    /// Snapshot transfers: the one being received, the one accepted and waiting for its write, and
    /// the peers this leader streams one to (ShardActor+Snapshots.swift).
    var incoming: IncomingSnapshot?
    var pendingInstall: PendingInstall?
    var sendingSnapshotTo: Set<NodeID> = []
    /// Ops this leader proposed, by index, so that applying them needs no decoding.
    var proposedOps: [RaftIndex: (term: RaftTerm, op: Infranaut_V1_StoredOp)] = [:]
    /// Proposals of this leader waiting for their entry to be applied, by index.
    var waiters: [RaftIndex: [Waiter]] = [:]
    /// Keys proposed here and not yet applied: a retry racing its original joins it.
    var proposing: [IdempotencyKey: [CheckedContinuation<Infranaut_V1_IngestResponse, Never>]] = [:]
    /// When this replica stopped leading while proposals still waited (see ``abandonAfterStepDown``).
    var steppedDownAt: Duration?
    /// When the core wants its next tick.
    var coreTickAt: Duration?
    /// Requests waiting for a leadership transfer to end.
    var transferWaiters: [CheckedContinuation<Void, Never>] = []
    /// Called once when the shard stops after a storage failure (the node fail-stops on it).
    var onFailure: (@Sendable (String) -> Void)?
    /// The shard's own background tasks (the directive pump), awaited by ``stop()``.
    var activities = ShardActivities()

    /// Loads this node's replica of the shard's group, if it holds one. The state machine is
    /// rebuilt by applying the committed log once the group runs (``start()``).
    public init(
        shard: Int, nodeID: String, store: ShardStore, writer: GroupCommitWriter, settings: ShardSettings,
        logger: Logger
    ) throws(StorageError) {
        self.shard = shard
        self.nodeID = NodeID(nodeID)
        self.store = store
        self.writer = writer
        self.settings = settings
        var logger = logger
        logger[metadataKey: "shard"] = "\(shard)"
        self.logger = logger
        let loader = ModelLoader(store: store, shard: shard)
        models = ShardModels([:], dirty: false, loader: loader)
        let generation =
            try store.database.get(StorageKeys.Predictions.Generation.key(shard: shard), in: store.meta)?.first ?? 0
        models.predictionGeneration = generation
        // The other generation only ever holds a snapshot being received: after a restart, garbage.
        let staging = StorageKeys.Predictions.generationRange(shard: shard, generation: generation ^ 1)
        try store.database.deleteRange(from: staging.start, to: staging.end, in: store.predictions)
        raftLog = RaftLogStore(store: store, shard: shard)
        if let durable = try raftLog.load() {
            if let checkpoint = durable.snapshot {
                var loaded = ShardModels([:], dirty: false, loader: loader)
                loaded.predictionGeneration = generation
                let parking = settings.parkIdleModelsAfter != nil
                let idempotency = try Self.loadCheckpoint(shard: shard, store: store) { state in
                    loaded.adopt(state, parked: parking)
                }
                models = loaded
                remembered = IdempotencyTable(idempotency)
                _ = remembered.takeChanges()
                store.modelCount.add(loaded.modelIDs.count)
                appliedIndex = checkpoint.index
                checkpointIndex = checkpoint.index
            }
            raft = Self.replica(node: self.nodeID, shard: shard, durable: durable, settings: settings.raft)
        }
    }

    static func replica(node: NodeID, shard: Int, durable: RaftDurableState, settings: RaftSettings)
        -> RaftInstance
    {
        var seed = StableHash.fnv1a64(node.rawValue)
        seed ^= UInt64(shard) &* 0x9E37_79B9_7F4A_7C15
        return RaftInstance(id: node, voters: [], durable: durable, settings: settings, seed: seed)
    }

    /// Whether this node leads the shard, and whom to ask otherwise.
    public var leadership: Leadership {
        guard let raft else { return .notAReplica }
        return raft.role == .leader ? .here : .elsewhere(raft.leader)
    }

    /// The group's voters as this replica knows them (empty when it holds no replica).
    public var voters: Set<NodeID> { raft?.voters ?? [] }

    /// This replica's view of its group (zero values without a replica).
    public var group: ShardGroupView {
        ShardGroupView(term: raft?.term ?? 0, leader: raft?.leader, voters: raft?.voters ?? [])
    }

    // MARK: - Ingest

    /// What a replica answers to a request that must be served by the group's leader.
    public enum AtLeader<Answer: Sendable>: Sendable {
        /// Served here.
        case done(Answer)
        /// This replica does not lead (any more): ask the leader it knows (nil: none known).
        case notLeader(NodeID?)
    }

    /// Proposes a validated ingest and returns the response once the op is committed and applied,
    /// or `.notLeader` when this replica does not lead (the caller forwards the request). A
    /// leadership transfer in progress is waited out first. A batch still waiting for its turn
    /// when `deadline` passes is not proposed (its sender has given up and retries with its key).
    public func ingestAtLeader(
        _ request: Infranaut_V1_IngestRequest, deadline: ContinuousClock.Instant = .now + .seconds(30)
    ) async -> AtLeader<Infranaut_V1_IngestResponse> {
        guard state == .serving else { return .done(failure(unavailableMessage)) }
        let model = request.batch.modelID
        let key = IdempotencyKey(model: model, key: request.idempotencyKey)
        if let done = remembered[key] { return .done(replay(done)) }
        if proposing[key] != nil { return .done(await joinProposal(key)) }
        await awaitTransferEnd()
        guard state == .serving else { return .done(failure(unavailableMessage)) }
        if let done = remembered[key] { return .done(replay(done)) }
        if proposing[key] != nil { return .done(await joinProposal(key)) }
        guard let current = raft, current.role == .leader else { return .notLeader(raft?.leader) }
        guard ContinuousClock.now < deadline else {
            return .done(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message:
                            "the batch waited past its deadline before shard \(shard) could propose it; it was not applied; retry with the same idempotency key"
                    )
                    $0.shard = UInt32(shard)
                })
        }

        // The limits are checked against the projection, in the same actor turn that extends it and
        // proposes the op, so concurrent batches are counted in order and cannot pass a limit
        // together. Only the leader checks: a replica applies what the group committed.
        // A batch of labels adds no feature and no model: nothing to admit or normalize.
        var normalized = BatchNormalizer.Result(
            batch: request.batch, mismatchCounts: [], firstMismatches: [], mismatchRows: [])
        if !request.batch.labels {
            var projection: ProjectedSchema
            do throws(WireError) {
                projection = try admit(request.batch)
            } catch {
                return .done(
                    .with {
                        $0.status = Infranaut_V1_Status(code: error.code, message: error.message)
                        $0.shard = UInt32(shard)
                    })
            }
            normalized = projection.normalize(request.batch)
            models.project(model, projection)
        }
        let op = Infranaut_V1_StoredOp.with {
            $0.idempotencyKey = request.idempotencyKey
            $0.batch = normalized.batch
            $0.typeMismatches = normalized.mismatchCounts
            $0.typeMismatchRows = normalized.mismatchRows
            $0.acceptedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        }
        let command: [UInt8]
        do throws(StorageError) {
            command = try encode(op)
        } catch {
            return .done(failure("the batch could not be encoded (\(error)); it was not applied"))
        }
        proposing[key] = []
        let response: Infranaut_V1_IngestResponse
        switch await propose(command, op: op) {
        case .op(let record, let replayed)?:
            response = .with {
                $0.status = .ok
                $0.rowsAccepted = record.rowsAccepted
                $0.sequence = record.sequence
                $0.shard = UInt32(shard)
                $0.typeMismatchCount = record.typeMismatchCount
                $0.replayed = replayed
                if !replayed { $0.typeMismatches = normalized.firstMismatches }
                if record.hasLabels { $0.labels = record.labels }
            }
        case .marker?, .spec?, nil:
            response = failure(
                "shard \(shard) lost its leader before the batch was known to be committed (a leader change, or a majority of its replicas is out of reach); it may still be; retry with the same idempotency key"
            )
        }
        for waiter in proposing.removeValue(forKey: key) ?? [] { waiter.resume(returning: response) }
        return .done(response)
    }

    /// ``ingestAtLeader(_:)`` for callers that do not forward: `.notLeader` is answered UNAVAILABLE.
    public func ingest(_ request: Infranaut_V1_IngestRequest) async -> Infranaut_V1_IngestResponse {
        switch await ingestAtLeader(request) {
        case .done(let response): response
        case .notLeader: failure(notLeaderMessage)
        }
    }

    /// Checks the feature and model limits for `batch`, reserving the model's place in the node's
    /// count when it is new; returns the model's projection for the caller to extend in the same
    /// actor turn, or throws the refusal.
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

    var notLeaderMessage: String {
        switch leadership {
        case .here: ""
        case .elsewhere(let leader?): "this node does not lead shard \(shard) (\(leader) does); retry"
        case .elsewhere(nil):
            "shard \(shard) has no leader right now (an election is running, or a majority of its replicas is out of reach); retry shortly"
        case .notAReplica: "this node holds no replica of shard \(shard); retry"
        }
    }

    func failure(_ message: String) -> Infranaut_V1_IngestResponse {
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
            if record.hasLabels { $0.labels = record.labels }
        }
    }

    /// Waits for the outcome of the same key being proposed right now (a client retry racing its
    /// original) and answers it as a replay.
    private func joinProposal(_ key: IdempotencyKey) async -> Infranaut_V1_IngestResponse {
        var response = await withCheckedContinuation { proposing[key, default: []].append($0) }
        if response.status.code == .ok { response.replayed = true }
        return response
    }

    // MARK: - Reads

    /// Whether a read served now reflects every write acknowledged before it (by any leader): this
    /// node leads and has applied a marker entry proposed now, in its term. `.notLeader` when it does
    /// not lead (the caller forwards the read); `.done(false)` when the shard cannot serve at all.
    public func readIndex() async -> AtLeader<Bool> {
        guard state == .serving else { return .done(false) }
        await awaitTransferEnd()
        guard state == .serving else { return .done(false) }
        guard raft?.role == .leader else { return .notLeader(raft?.leader) }
        if case .marker? = await propose([]) { return .done(true) }
        return .notLeader(raft?.leader)
    }

    /// ``readIndex()`` for callers that do not forward.
    public func readyForReads() async -> Bool {
        if case .done(true) = await readIndex() { return true }
        return false
    }

    /// The whole status of `model` (every feature; for in-process readers; nil also when it cannot
    /// be loaded right now).
    public func status(model: String) -> Infranaut_V1_ModelStatus? {
        (try? held(model))?.status(shard: shard)
    }

    /// One page of `request.model_id`'s status (``StatusPaging``); nil when the shard holds no
    /// such model.
    public func status(_ request: Infranaut_V1_StatusRequest) -> Infranaut_V1_StatusResponse? {
        do throws(ModelUnavailable) {
            return try held(request.modelID)?.statusPage(
                shard: shard, after: request.featuresAfter, limit: request.featureLimit)
        } catch {
            return .with { $0.status = error.status }
        }
    }

    public var modelIDs: [String] { models.modelIDs }

    /// How many of the shard's models are in memory and how many only in RocksDB (parked).
    public var residency: (resident: Int, parked: Int) { (models.residentCount, models.parkedCount) }

    /// `model`'s state for a read, loaded from the checkpoint when parked; nil when the shard holds
    /// nothing of it. Throws a retryable refusal while a received snapshot is replacing the state
    /// (the checkpoint is being rewritten under the parked model) or when the model cannot be read
    /// back; a read changes nothing, so it refuses rather than stopping the shard.
    func held(_ model: String) throws(ModelUnavailable) -> ModelState? {
        if models.isParked(model), pendingInstall != nil {
            throw ModelUnavailable(
                message: "shard \(shard) is installing a snapshot from its leader; retry shortly")
        }
        do throws(StorageError) {
            return try models.state(model)
        } catch {
            logger.error("could not load a parked model", metadata: ["model": "\(model)", "error": "\(error)"])
            throw ModelUnavailable(
                message: "model \"\(model)\" could not be read from disk on shard \(shard) (\(error)); retry")
        }
    }

    /// `model`'s state for a read, or the status refusing it: retryable (see ``held(_:)``), or not
    /// found when the shard holds nothing of it.
    func heldForRead(_ model: String) -> Result<ModelState, ReadRefusal> {
        let found: ModelState?
        do throws(ModelUnavailable) {
            found = try held(model)
        } catch {
            return .failure(ReadRefusal(status: error.status))
        }
        guard let found else {
            return .failure(
                ReadRefusal(
                    status: Infranaut_V1_Status(
                        code: .notFound, message: "model \"\(model)\" does not exist in this cluster")))
        }
        return .success(found)
    }

    /// `model`'s windows for a read (see ``heldForRead(_:)``); not found without a spec.
    func heldMonitor(_ model: String) -> Result<ModelMonitor, ReadRefusal> {
        heldForRead(model).flatMap { held in
            guard let monitor = held.monitor else {
                return .failure(
                    ReadRefusal(
                        status: Infranaut_V1_Status(
                            code: .notFound,
                            message:
                                "model \"\(model)\" has no windows: apply a spec for it (infranaut apply) to declare them"
                        )))
            }
            return .success(monitor)
        }
    }

    /// Parks the models unused for `parkIdleModelsAfter` (``ShardModels``): called every second by
    /// the node. Not while a checkpoint is being written, whose models are out of the dirty set
    /// before they are durable, nor while a received snapshot waits to replace the state.
    /// Returns how many it parked.
    @discardableResult
    public func parkIdleModels() -> Int {
        guard let idle = settings.parkIdleModelsAfter, state == .serving, !activities.checkpointing,
            pendingInstall == nil
        else { return 0 }
        return models.park(unusedSince: .now - idle)
    }

    /// The index of the last entry applied to this replica's state machine.
    public var appliedSequence: UInt64 { appliedIndex }

    /// The receipts of `keys` for `model` and the model's counts, read in one actor turn so the
    /// counts and the receipts describe the same state. A key is remembered exactly when its op is
    /// applied here, for the idempotency window.
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
            let counts = models.counts(of: model)
            $0.modelBatches = counts?.batches ?? 0
            $0.modelRows = counts?.rows ?? 0
        }
    }

    // MARK: - Failure and stop

    func fail(_ reason: String) {
        guard state != .failed(reason) else { return }
        logger.error("shard stopped", metadata: ["reason": "\(reason)"])
        state = .failed(reason)
        onFailure?(reason)
        abandonWaiters()
    }

    /// Refuses new requests (retryable), lets the directives already queued finish, and answers
    /// every proposal still waiting with "retry".
    public func stop() async {
        if case .failed = state { return }
        state = .stopping
        await awaitBackground()
        abandonWaiters()
    }

    func abandonWaiters() {
        for (_, list) in waiters {
            for waiter in list { waiter.continuation.resume(returning: nil) }
        }
        waiters = [:]
        steppedDownAt = nil
        for waiter in transferWaiters { waiter.resume() }
        transferWaiters = []
    }

    /// Returns once no leadership transfer runs on this replica (at most an election timeout), and
    /// a replica that does not lead knows who does, or two election timeouts passed: a request that
    /// arrives in the middle of a transfer or an election is then served or sent on, not refused.
    func awaitTransferEnd() async {
        while state == .serving, raft?.isTransferringLeadership == true {
            await withCheckedContinuation { transferWaiters.append($0) }
        }
        let deadline = ContinuousClock.now + settings.raft.electionTimeout * 2
        while state == .serving, let current = raft, current.role != .leader, current.leader == nil,
            current.isVoter, ContinuousClock.now < deadline
        {
            try? await Task.sleep(for: settings.raft.heartbeatInterval / 5)
        }
    }
}

/// Why a read of a model is refused, as the status its answer carries.
struct ReadRefusal: Error {
    let status: Infranaut_V1_Status
}
