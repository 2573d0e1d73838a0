import Monitoring
import Storage
import Wire

/// How long a model's predictions are kept for their labels, in epochs (docs/performance.md).
///
/// A prediction goes into epoch `⌊newestOpMs / length⌋`, with `length` half the spec's
/// `retention.predictions` (at least an hour) and `newestOpMs` the largest acceptance time of any
/// op the model applied, its own included: replicated state that never goes back, so every
/// replica files a prediction in the same epoch whichever leader's clock accepted it, and an id
/// sent again lands in the same or a newer epoch than before (a label, probing the newest epoch
/// first, finds the newest prediction on every replica, whether or not the older one reached its
/// disk). An op sees only the epochs from ``liveFrom(newestOpMs:)`` on, so every replica expires
/// the same predictions at the same index, whenever it happens to checkpoint. A prediction lives
/// at least the retention (two epochs) and at most 1.5 times it, until a checkpoint deletes the
/// epochs below the bound; a leader whose clock runs ahead shortens that for what is kept then.
struct PredictionEpochs: Sendable, Hashable {
    static let defaultRetentionMs: Int64 = 7 * 86_400_000
    let lengthMs: Int64

    init(spec: Infranaut_V1_ModelSpec) {
        let retention =
            spec.retention.predictionsMs > 0 ? Int64(clamping: spec.retention.predictionsMs) : Self.defaultRetentionMs
        lengthMs = max(3_600_000, retention / 2)
    }

    func epoch(ms: Int64) -> UInt32 { UInt32(clamping: max(0, ms) / lengthMs) }

    /// The oldest epoch still live once an op accepted at `newestOpMs` was applied.
    func liveFrom(newestOpMs: Int64) -> UInt32 {
        let current = epoch(ms: newestOpMs)
        return current >= 2 ? current - 2 : 0
    }
}

/// The prediction records added or labelled since the shard's last checkpoint, per model and id.
///
/// Invariant (docs/performance.md): the `predictions` family holds the records exactly as of the
/// checkpoint index; changes wait here and reach the family only in the checkpoint's batch. A
/// crash replays the log after the checkpoint against the same family and rebuilds the same
/// buffer, so a label is never counted twice nor lost.
struct PredictionBuffer: Sendable {
    struct Staged: Sendable {
        var epoch: UInt32
        var record: Infranaut_V1_PredictionRecord
    }

    private(set) var staged: [String: [String: Staged]] = [:]
    /// Records staged, over all models (a checkpoint trigger).
    private(set) var count = 0
    /// Models whose stored records are void (their epoch length changed, or they were purged):
    /// the checkpoint deletes all their records before writing the staged ones.
    private(set) var cleared: Set<String> = []

    func record(_ model: String, _ id: String) -> Staged? { staged[model]?[id] }

    /// Whether the stored (and in-flight) records of `model` no longer count.
    func isCleared(_ model: String) -> Bool { cleared.contains(model) }

    mutating func put(_ model: String, _ id: String, _ entry: Staged) {
        if staged[model, default: [:]].updateValue(entry, forKey: id) == nil { count += 1 }
    }

    /// Voids every record of `model`, staged or stored.
    mutating func clear(_ model: String) {
        count -= staged.removeValue(forKey: model)?.count ?? 0
        cleared.insert(model)
    }

    /// Puts back changes taken by a checkpoint whose write failed, under those made since (none
    /// for a model voided since).
    mutating func restore(_ older: PredictionBuffer) {
        for (model, records) in older.staged where !cleared.contains(model) {
            staged[model, default: [:]].merge(records) { newer, _ in newer }
        }
        cleared.formUnion(older.cleared)
        count = staged.values.reduce(0) { $0 + $1.count }
    }
}
