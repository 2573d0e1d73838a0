import Monitoring
import Wire

/// The models of one shard in memory: each model's state, the schema each will have once every
/// accepted op is applied, and which models changed since the last checkpoint. The home of what a
/// shard knows per model; the actor routes ops here and persists what it reports.
struct ShardModels {
    /// Per model: its state from every applied op.
    private(set) var states: [String: ModelState]
    /// Per model: its names once every accepted op is applied (includes ops written and not yet
    /// applied, so concurrent batches agree on feature types and on the feature count).
    private var projections: [String: ProjectedSchema] = [:]
    /// Models changed since the last checkpoint.
    private var dirty: Set<String> = []

    init(_ states: [String: ModelState], dirty: Bool) {
        self.states = states
        self.dirty = dirty ? Set(states.keys) : []
    }

    subscript(model: String) -> ModelState? { states[model] }

    /// Whether the shard holds or has accepted anything for `model`.
    func knows(_ model: String) -> Bool { projections[model] != nil || states[model] != nil }

    /// What `model`'s schema will be once every accepted op is applied.
    func projection(of model: String) -> ProjectedSchema {
        projections[model] ?? ProjectedSchema(states[model])
    }

    /// Records the schema an accepted (not yet applied) op leaves `model` with.
    mutating func project(_ model: String, _ projection: ProjectedSchema) {
        projections[model] = projection
    }

    /// Applies one op; true when it is the first the shard holds of its model.
    mutating func apply(_ op: Infranaut_V1_StoredOp) -> Bool {
        let model = op.batch.modelID
        var isNew = false
        if projections[model] != nil {
            // A no-op for this shard's own ops; keeps the projection whole when ops of another
            // primary's history are applied here.
            projections[model]!.absorb(op.batch)
        } else if states[model] == nil {
            isNew = true
        }
        states[model, default: ModelState(modelID: model)].apply(op)
        dirty.insert(model)
        return isNew
    }

    /// Applies a spec change; true when it is the first the shard holds of its model.
    mutating func apply(spec change: Infranaut_V1_ModelSpecOp, acceptedUnixMs: Int64) -> Bool {
        let model = change.modelID
        let isNew = projections[model] == nil && states[model] == nil
        states[model, default: ModelState(modelID: model)].apply(spec: change, acceptedUnixMs: acceptedUnixMs)
        dirty.insert(model)
        return isNew
    }

    /// Removes the deleted models whose retention ended by `unixMs` (an op's acceptance time, so
    /// every replica removes the same models at the same index); returns how many.
    mutating func purge(deletedBefore unixMs: Int64) -> Int {
        let due = states.values.filter { $0.purgeAfterUnixMs != 0 && $0.purgeAfterUnixMs <= unixMs }.map(\.modelID)
        for model in due {
            states[model] = nil
            projections[model] = nil
            dirty.insert(model)
        }
        return due.count
    }

    /// Whether any model's windows are due to close by processing time at `nowMs`.
    func windowsDue(nowMs: Int64) -> Bool {
        states.values.contains { $0.monitor?.isDue(nowMs: nowMs) == true }
    }

    /// Applies a tick op: closes every model's windows idle by `unixMs`.
    mutating func tickWindows(at unixMs: Int64) {
        for (model, state) in states where state.monitor?.isDue(nowMs: unixMs) == true {
            states[model]!.tickWindows(processingTimeMs: unixMs)
            dirty.insert(model)
        }
    }

    /// The window results closed (and late rows counted) since the last call, per model, for a
    /// checkpoint; ``restoreWindowResults(_:)`` when its write failed.
    typealias TakenResults = (results: [WindowKey: ClosedResult], late: [WindowKey: UInt64])

    mutating func takeWindowResults() -> [String: TakenResults] {
        var taken: [String: TakenResults] = [:]
        for model in states.keys where states[model]?.monitor != nil {
            let part = states[model]!.monitor!.takeForCheckpoint()
            if !part.results.isEmpty || !part.late.isEmpty { taken[model] = part }
        }
        return taken
    }

    mutating func restoreWindowResults(_ taken: [String: TakenResults]) {
        for (model, part) in taken where states[model]?.monitor != nil { states[model]!.monitor!.restore(part) }
    }

    /// The models changed since the last call, for a checkpoint (``restoreDirty(_:)`` when it failed).
    mutating func takeDirty() -> Set<String> {
        defer { dirty = [] }
        return dirty
    }

    mutating func restoreDirty(_ models: Set<String>) {
        dirty.formUnion(models)
    }

    /// Replaces every model with `loaded` (a snapshot install); returns the change in the number
    /// of models the shard counts (held or accepted).
    mutating func replace(with loaded: [String: ModelState]) -> Int {
        let before = Set(states.keys).union(projections.keys).count
        states = loaded
        projections = [:]
        dirty = []
        return loaded.count - before
    }
}
