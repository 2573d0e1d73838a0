import Monitoring
import Storage
import Wire

/// The models of one shard: each model's state, the schema each will have once every accepted op
/// is applied, and which models changed since the last checkpoint. The home of what a shard knows
/// per model; the actor routes ops here and persists what it reports.
///
/// A model is *resident* (its whole ``ModelState`` in memory) or *parked* (only a ``ParkedModel``
/// of counts and deadlines in memory; the state is its entry in the shard's durable checkpoint).
/// Memory then follows the models that receive traffic or reads, not every model the node holds
/// (docs/replication.md, "Parked models").
///
/// Invariant: a parked model's durable checkpoint entry is its whole state. A model is parked only
/// while it has not changed since the last durable checkpoint (not dirty, and no checkpoint write
/// in flight: the caller's part), and every change or read of a parked model loads it first. So
/// parking is invisible to the state machine: a shard that parks ends byte-identical to one that
/// never does (`ParkingTests`).
struct ShardModels {
    /// Per resident model: its state from every applied op, and when it was last used.
    private var resident: [String: ModelState]
    private var lastUsed: [String: ContinuousClock.Instant] = [:]
    /// Per parked model: what is kept of it in memory.
    private var parked: [String: ParkedModel] = [:]
    /// Per model: its names once every accepted op is applied (includes ops written and not yet
    /// applied, so concurrent batches agree on feature types and on the feature count). Parked
    /// models always have one, so admitting a batch never loads a model.
    private var projections: [String: ProjectedSchema] = [:]
    /// Models changed since the last checkpoint.
    private var dirty: Set<String> = []
    /// Reads a parked model's state back from the durable checkpoint.
    private let loader: ModelLoader
    /// Predictions kept or labelled since the last checkpoint was taken, and those of a checkpoint
    /// being written (readable until its write is durable).
    private var predictions = PredictionBuffer()
    private var predictionsInFlight = PredictionBuffer()
    /// The generation the shard's kept predictions are stored under (`StorageKeys.Predictions`).
    var predictionGeneration: UInt8 = 0

    init(_ states: [String: ModelState], dirty: Bool, loader: ModelLoader) {
        resident = states
        self.dirty = dirty ? Set(states.keys) : []
        self.loader = loader
        let now = ContinuousClock.now
        for model in states.keys { lastUsed[model] = now }
    }

    /// A resident model's state, without loading a parked one (nil for it): for the checkpoint,
    /// whose models are dirty and so resident.
    func residentState(_ model: String) -> ModelState? { resident[model] }

    /// `model`'s state, loading it when parked (it stays resident until idle again); nil when the
    /// shard holds nothing of it. Throws when a parked model cannot be read back.
    mutating func state(_ model: String) throws(StorageError) -> ModelState? {
        try unpark(model)
        if resident[model] != nil { lastUsed[model] = .now }
        return resident[model]
    }

    /// Whether `model` is held only in the durable checkpoint.
    func isParked(_ model: String) -> Bool { parked[model] != nil }

    /// `model`'s row and batch counts, without loading it.
    func counts(of model: String) -> (rows: UInt64, batches: UInt64)? {
        if let held = resident[model] { return (held.rows, held.batches) }
        return parked[model].map { ($0.summary.rows, $0.batches) }
    }

    /// Whether the shard holds or has accepted anything for `model`.
    func knows(_ model: String) -> Bool {
        projections[model] != nil || resident[model] != nil || parked[model] != nil
    }

    /// What `model`'s schema will be once every accepted op is applied.
    func projection(of model: String) -> ProjectedSchema {
        projections[model] ?? ProjectedSchema(resident[model])
    }

    /// Records the schema an accepted (not yet applied) op leaves `model` with.
    mutating func project(_ model: String, _ projection: ProjectedSchema) {
        projections[model] = projection
    }

    /// Applies one op; true when it is the first the shard holds of its model.
    mutating func apply(_ op: Infranaut_V1_StoredOp) throws(StorageError) -> Bool {
        let model = op.batch.modelID
        try unpark(model)
        var isNew = false
        if projections[model] != nil {
            // A no-op for this shard's own ops; keeps the projection whole when ops of another
            // primary's history are applied here.
            projections[model]!.absorb(op.batch)
        } else if resident[model] == nil {
            isNew = true
        }
        let kept = resident[model, default: ModelState(modelID: model)].apply(op)
        if !kept.isEmpty, let epochs = resident[model]!.monitor?.epochs {
            let epoch = epochs.epoch(ms: resident[model]!.newestOpUnixMs)
            // An id sent again replaces the prediction kept under it.
            for (id, record) in kept { predictions.put(model, id, .init(epoch: epoch, record: record)) }
        }
        touch(model)
        return isNew
    }

    /// Applies a batch of labels (`op.batch.labels`): each joins the prediction kept under its id
    /// in a live epoch, once. A model the shard does not hold, or one without a task, has no kept
    /// predictions: every label is unknown, and nothing is created.
    mutating func applyLabels(_ op: Infranaut_V1_StoredOp) throws(StorageError) -> Infranaut_V1_LabelOutcome {
        let batch = op.batch
        let model = batch.modelID
        try unpark(model)
        var outcome = Infranaut_V1_LabelOutcome()
        let rows = Int(batch.rowCount)
        let cells =
            batch.columns.first { $0.name == batch.labelColumn }.flatMap(ModelMonitor.windowColumn)?
            .performanceCells(rowCount: rows) ?? []
        guard resident[model] != nil, let epochs = resident[model]!.monitor?.epochs,
            cells.count == rows, batch.predictionIds.count == rows
        else {
            for cell in cells { if cell == nil { outcome.missing += 1 } else { outcome.unknownIds += 1 } }
            return outcome
        }
        resident[model]!.noteOp(acceptedUnixMs: op.acceptedUnixMs)
        touch(model)
        let newest = resident[model]!.newestOpUnixMs
        let (current, liveFrom) = (epochs.epoch(ms: newest), epochs.liveFrom(newestOpMs: newest))
        for row in 0..<rows {
            guard let actual = cells[row] else {
                outcome.missing += 1
                continue
            }
            let id = batch.predictionIds[row]
            guard var found = try keptPrediction(model, id, current: current, liveFrom: liveFrom) else {
                outcome.unknownIds += 1
                continue
            }
            if found.record.labelled {
                outcome.alreadyLabelled += 1
                continue
            }
            found.record.labelled = true
            predictions.put(model, id, found)
            outcome.joined += 1
            if !resident[model]!.joinLabel(found.record, actual: actual) { outcome.unusable += 1 }
        }
        resident[model]!.monitor?.rejudgeLabelled(nowMs: op.acceptedUnixMs)
        return outcome
    }

    /// The prediction kept for `id` as of the last applied op: changes since the last checkpoint,
    /// then those of a checkpoint being written, then the durable checkpoint's, newest epoch first.
    private func keptPrediction(_ model: String, _ id: String, current: UInt32, liveFrom: UInt32)
        throws(StorageError) -> PredictionBuffer.Staged?
    {
        for buffer in [predictions, predictionsInFlight] {
            if let staged = buffer.record(model, id) { return staged.epoch >= liveFrom ? staged : nil }
            if buffer.isCleared(model) { return nil }
        }
        guard current >= liveFrom else { return nil }
        for epoch in stride(from: current, through: liveFrom, by: -1) {
            if let record = try loader.prediction(model, generation: predictionGeneration, epoch: epoch, id: id) {
                return .init(epoch: epoch, record: record)
            }
        }
        return nil
    }

    /// The oldest live prediction epoch of a resident model with a spec (nil otherwise).
    func predictionsLiveFrom(_ model: String) -> UInt32? {
        guard let held = resident[model], let epochs = held.monitor?.epochs else { return nil }
        return epochs.liveFrom(newestOpMs: held.newestOpUnixMs)
    }

    /// The prediction changes since the last call, for a checkpoint: readable until
    /// ``predictionsWritten()``, or put back by ``restorePredictions(_:)`` when its write failed.
    mutating func takePredictions() -> PredictionBuffer {
        predictionsInFlight = predictions
        predictions = PredictionBuffer()
        return predictionsInFlight
    }

    mutating func predictionsWritten() { predictionsInFlight = PredictionBuffer() }

    /// Predictions kept or labelled since the last checkpoint was taken.
    var stagedPredictions: Int { predictions.count }

    mutating func restorePredictions(_ taken: PredictionBuffer) {
        predictions.restore(taken)
        predictionsInFlight = PredictionBuffer()
    }

    /// Applies a spec change; true when it is the first the shard holds of its model.
    mutating func apply(spec change: Infranaut_V1_ModelSpecOp, acceptedUnixMs: Int64) throws(StorageError) -> Bool {
        let model = change.modelID
        try unpark(model)
        let isNew = projections[model] == nil && resident[model] == nil
        let epochs = resident[model]?.monitor?.epochs
        resident[model, default: ModelState(modelID: model)].apply(spec: change, acceptedUnixMs: acceptedUnixMs)
        // A new epoch length makes the kept epochs unreadable: the predictions kept so far go.
        if let epochs, epochs != resident[model]!.monitor?.epochs { predictions.clear(model) }
        touch(model)
        return isNew
    }

    /// Removes the deleted models whose retention ended by `unixMs` (an op's acceptance time, so
    /// every replica removes the same models at the same index); returns how many. Parked models
    /// go without being loaded.
    mutating func purge(deletedBefore unixMs: Int64) -> Int {
        func due(_ purgeAfter: Int64) -> Bool { purgeAfter != 0 && purgeAfter <= unixMs }
        let gone =
            resident.values.filter { due($0.purgeAfterUnixMs) }.map(\.modelID)
            + parked.values.filter { due($0.summary.purgeAfterUnixMs) }.map(\.summary.name)
        for model in gone {
            resident[model] = nil
            lastUsed[model] = nil
            parked[model] = nil
            projections[model] = nil
            predictions.clear(model)
            dirty.insert(model)
        }
        return gone.count
    }

    /// Whether any model's windows are due to close by processing time at `nowMs`.
    func windowsDue(nowMs: Int64) -> Bool {
        resident.values.contains { ($0.tickDueAtMs ?? .max) <= nowMs }
            || parked.values.contains { ($0.tickDueAtMs ?? .max) <= nowMs }
    }

    /// Applies a tick op: closes every model's windows idle by `unixMs`, loading the parked ones
    /// that are due.
    mutating func tickWindows(at unixMs: Int64) throws(StorageError) {
        for (model, held) in parked where (held.tickDueAtMs ?? .max) <= unixMs { try unpark(model) }
        for (model, state) in resident where (state.tickDueAtMs ?? .max) <= unixMs {
            resident[model]!.tickWindows(processingTimeMs: unixMs)
            dirty.insert(model)
        }
    }

    /// Forgets a model's alert changes up to `op.through`: every coordinator has them.
    mutating func alertsDelivered(_ op: Infranaut_V1_AlertsDelivered) throws(StorageError) {
        try unpark(op.modelID)
        guard resident[op.modelID]?.monitor != nil else { return }
        resident[op.modelID]!.monitor!.alerts.delivered(through: op.through)
        touch(op.modelID)
    }

    /// The oldest alert changes not yet delivered to the coordinators, at most `limit`, by model:
    /// resident models' and parked ones' (kept with the park, since only applying an op, which
    /// loads the model, changes them).
    func undeliveredAlertChanges(limit: Int) -> [(model: String, number: UInt64, info: Infranaut_V1_AlertInfo)] {
        var found: [(model: String, number: UInt64, info: Infranaut_V1_AlertInfo)] = []
        let waiting =
            resident.compactMap { $0.value.monitor?.alerts.outbox.isEmpty == false ? $0.key : nil }
            + parked.compactMap { $0.value.alertChanges.isEmpty ? nil : $0.key }
        for model in waiting.sorted() where found.count < limit {
            let changes: [(number: UInt64, info: Infranaut_V1_AlertInfo)]
            if let monitor = resident[model]?.monitor {
                changes = monitor.alerts.outbox.prefix(limit - found.count).map { ($0.number, monitor.info(of: $0)) }
            } else {
                changes = Array((parked[model]?.alertChanges ?? []).prefix(limit - found.count))
            }
            found += changes.map { (model, $0.number, $0.info) }
        }
        return found
    }

    /// The window results closed (and late rows counted) since the last call, per model, for a
    /// checkpoint; ``restoreWindowResults(_:)`` when its write failed. Only resident models have
    /// any: results come from changes, and a changed model is resident until its checkpoint.
    typealias TakenResults = MonitorChanges

    mutating func takeWindowResults() -> [String: TakenResults] {
        var taken: [String: TakenResults] = [:]
        for model in resident.keys where resident[model]?.monitor != nil {
            let part = resident[model]!.monitor!.takeForCheckpoint()
            if !part.isEmpty { taken[model] = part }
        }
        return taken
    }

    mutating func restoreWindowResults(_ taken: [String: TakenResults]) {
        for (model, part) in taken where resident[model]?.monitor != nil { resident[model]!.monitor!.restore(part) }
    }

    /// The models changed since the last call, for a checkpoint (``restoreDirty(_:)`` when it failed).
    mutating func takeDirty() -> Set<String> {
        defer { dirty = [] }
        return dirty
    }

    mutating func restoreDirty(_ models: Set<String>) {
        dirty.formUnion(models)
    }

    /// Replaces every model with `loaded` (a snapshot install, durable as the shard's checkpoint);
    /// returns the change in the number of models the shard counts (held or accepted).
    mutating func replace(with loaded: [String: ModelState]) -> Int {
        let before = Set(resident.keys).union(parked.keys).union(projections.keys).count
        let generation = predictionGeneration
        self = ShardModels(loaded, dirty: false, loader: loader)
        predictionGeneration = generation
        return loaded.count - before
    }

    // MARK: Parking

    /// Parks every resident model unchanged since the last checkpoint and unused since `cutoff`;
    /// returns how many. Call only when the shard's checkpoint is durable and no checkpoint write
    /// is in flight (its models are taken out of `dirty` before they are durable).
    mutating func park(unusedSince cutoff: ContinuousClock.Instant) -> Int {
        let idle = resident.keys.filter { !dirty.contains($0) && (lastUsed[$0] ?? cutoff) < cutoff }
        for model in idle { park(model) }
        return idle.count
    }

    /// Takes in `state` from the shard's durable checkpoint (at start), parked or resident.
    mutating func adopt(_ state: ModelState, parked: Bool) {
        resident[state.modelID] = state
        lastUsed[state.modelID] = .now
        if parked { park(state.modelID) }
    }

    private mutating func park(_ model: String) {
        guard let state = resident.removeValue(forKey: model) else { return }
        lastUsed[model] = nil
        if projections[model] == nil { projections[model] = ProjectedSchema(state) }
        parked[model] = ParkedModel(state)
    }

    private mutating func unpark(_ model: String) throws(StorageError) {
        guard parked[model] != nil else { return }
        guard let state = try loader.load(model) else {
            throw StorageError(
                .corruption, operation: "load parked model \(model) of shard \(loader.shard)",
                message: "its checkpoint entry is missing")
        }
        parked[model] = nil
        resident[model] = state
        lastUsed[model] = .now
    }

    private mutating func touch(_ model: String) {
        dirty.insert(model)
        lastUsed[model] = .now
    }

    // MARK: Listings

    /// Every model the shard holds, resident or parked.
    var modelIDs: [String] { Array(resident.keys) + Array(parked.keys) }

    var residentCount: Int { resident.count }
    var parkedCount: Int { parked.count }

    /// The alerts of every model the shard holds, in `state` (unspecified: pending and firing),
    /// resolved ones too when asked.
    func alertInfos(state: Infranaut_V1_AlertState, includeResolved: Bool) -> [Infranaut_V1_AlertInfo] {
        let kept = resident.values.flatMap {
            $0.monitor?.alertInfos(state: state, includeResolved: includeResolved) ?? []
        }
        let parkedKept = parked.values.flatMap(\.alerts).filter {
            state == .unspecified ? ($0.state != .resolved || includeResolved) : $0.state == state
        }
        return kept + parkedKept
    }

    /// The `get models` line of every model the shard holds.
    var summaries: [Infranaut_V1_ModelSummary] {
        resident.values.map { ParkedModel.summary(of: $0) } + parked.values.map(\.summary)
    }

    /// Per model with a spec: its window size and how long its window results are kept.
    var windowRetention: [(model: String, sizeMs: Int64, keepMs: Int64)] {
        resident.values.compactMap { held in
            ParkedModel.retention(of: held).map { (held.modelID, $0.sizeMs, $0.keepMs) }
        }
            + parked.values.compactMap { held in held.retention.map { (held.summary.name, $0.sizeMs, $0.keepMs) } }
    }
}

/// What a shard keeps in memory of a parked model: its `get models` line, its batch count, when
/// its open windows close by processing time, and its window retention.
struct ParkedModel {
    var summary: Infranaut_V1_ModelSummary
    var batches: UInt64
    var tickDueAtMs: Int64?
    var retention: (sizeMs: Int64, keepMs: Int64)?
    /// Its alerts, resolved ones included (empty for most models).
    var alerts: [Infranaut_V1_AlertInfo]
    /// Its alert changes not yet delivered to the coordinators.
    var alertChanges: [(number: UInt64, info: Infranaut_V1_AlertInfo)]

    init(_ state: ModelState) {
        summary = Self.summary(of: state)
        batches = state.batches
        tickDueAtMs = state.tickDueAtMs
        retention = Self.retention(of: state)
        alerts = state.monitor?.alertInfos(state: .unspecified, includeResolved: true) ?? []
        alertChanges =
            state.monitor.map { monitor in monitor.alerts.outbox.map { ($0.number, monitor.info(of: $0)) } } ?? []
    }

    static func retention(of held: ModelState) -> (sizeMs: Int64, keepMs: Int64)? {
        held.spec.map { (Int64(clamping: $0.window.sizeMs), Int64(clamping: $0.retention.windowsMs)) }
    }

    static func summary(of held: ModelState) -> Infranaut_V1_ModelSummary {
        .with {
            $0.name = held.modelID
            $0.generation = held.generation
            $0.hasSpec_p = held.spec != nil
            $0.rows = held.rows
            $0.task = held.spec?.task ?? .unspecified
            $0.purgeAfterUnixMs = held.purgeAfterUnixMs
            $0.labels = held.spec?.labels ?? [:]
        }
    }
}

/// Reads a model's state from its shard's durable checkpoint (the `models` family).
struct ModelLoader: Sendable {
    let store: ShardStore
    let shard: Int

    /// The prediction kept for `id` in `epoch` as of the durable checkpoint.
    func prediction(_ model: String, generation: UInt8, epoch: UInt32, id: String) throws(StorageError)
        -> Infranaut_V1_PredictionRecord?
    {
        let key = StorageKeys.Predictions.key(shard: shard, generation: generation, model: model, epoch: epoch, id: id)
        guard let bytes = try store.database.get(key, in: store.predictions) else { return nil }
        return try decode(Infranaut_V1_PredictionRecord.self, bytes, "prediction record of shard \(shard)")
    }

    func load(_ model: String) throws(StorageError) -> ModelState? {
        guard let bytes = try store.database.get(StorageKeys.Models.key(shard: shard, model: model), in: store.models)
        else { return nil }
        let snapshot = try decode(Infranaut_V1_ModelSnapshot.self, bytes, "model snapshot of shard \(shard)")
        return try ShardActor.modelState(snapshot, shard: shard)
    }
}
