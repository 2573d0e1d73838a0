import Synchronization
import Wire

/// A model's column names as they will be once every op accepted so far is applied: the
/// established feature types (what ``BatchNormalizer`` normalises against) and the names seen only
/// in columns without values (``ModelState/untypedMissing``). Both cost memory per name, so the
/// feature limit counts both.
///
/// Invariant: `types` and `untyped` are disjoint, and hold every name of the model's applied state
/// and of its accepted, not yet applied ops.
struct ProjectedSchema: Sendable {
    var types: [String: Infranaut_V1_FeatureType]
    var untyped: Set<String>

    init(_ state: ModelState?) {
        types = state?.schema ?? [:]
        untyped = Set(state.map { Array($0.untypedMissing.keys) } ?? [])
    }

    /// Names the model holds (features and untyped names).
    var featureCount: Int { types.count + untyped.count }

    /// Columns of `batch` whose names the model does not hold yet (names are unique within a
    /// validated batch).
    func newNames(in batch: Infranaut_V1_TelemetryBatch) -> Int {
        batch.columns.reduce(0) { count, column in
            types[column.name] == nil && !untyped.contains(column.name) ? count + 1 : count
        }
    }

    /// Normalises `batch` and takes in its names.
    mutating func normalize(_ batch: Infranaut_V1_TelemetryBatch) -> BatchNormalizer.Result {
        let result = BatchNormalizer.normalize(batch, schema: &types)
        absorbUntyped(result.batch)
        return result
    }

    /// Takes in the names of an op applied from elsewhere (another primary's history): its columns
    /// are already normalised, so a typed column's type is the feature's type.
    mutating func absorb(_ batch: Infranaut_V1_TelemetryBatch) {
        for column in batch.columns where types[column.name] == nil && !column.isAllMissing {
            types[column.name] = column.featureType
        }
        absorbUntyped(batch)
    }

    private mutating func absorbUntyped(_ batch: Infranaut_V1_TelemetryBatch) {
        for column in batch.columns {
            if types[column.name] != nil {
                untyped.remove(column.name)
            } else {
                untyped.insert(column.name)
            }
        }
    }
}

/// The number of models a node's shards hold, shared by every shard of the node (one per
/// ``ShardStore``, which the node creates once and hands to each shard), for the models-per-node
/// limit.
///
/// One shared counter rather than a fixed share per shard (limit / shard count): models hash to
/// shards unevenly, and a node of 64 shards with a share of 156 models each would refuse a model on
/// a full shard while it holds far fewer than its limit. A shard counts a model from the moment it
/// accepts the model's first batch (as primary: ``reserve(limit:)``, before the op is written, so
/// concurrent first batches on different shards cannot together pass the limit) or applies one
/// from its primary (``add(_:)``, never refused: the primary already accepted it, and a replica
/// that refused would diverge from it).
public final class ModelCount: Sendable {
    private let count = Mutex(0)

    public init() {}

    /// Models the node's shards hold.
    public var value: Int { count.withLock { $0 } }

    /// Counts one more model if that stays within `limit`; false (and nothing counted) otherwise.
    func reserve(limit: Int) -> Bool {
        count.withLock { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func add(_ delta: Int) {
        count.withLock { $0 += delta }
    }
}

extension ShardSettings {
    /// The refusal of a batch that would take `model` (holding `current` names) past the feature
    /// limit, or nil when it fits.
    func featureLimitError(model: String, current: Int, adding: Int) -> WireError? {
        guard current + adding > maxFeaturesPerModel else { return nil }
        return .invalid(
            "the batch would add \(adding) new features to model \"\(model)\", which has \(current); the limit is "
                + "\(maxFeaturesPerModel) features per model (--max-features-per-model); nothing was applied; "
                + "send batches with the model's existing columns, or raise the limit")
    }

    /// The refusal of a new model's first batch on a node that holds `current` models.
    func modelLimitError(model: String, current: Int) -> WireError {
        .invalid(
            "model \"\(model)\" would be a new model on a node that holds \(current); the limit is \(maxModels) "
                + "models per node (--max-models); nothing was applied; raise the limit or add nodes")
    }
}
