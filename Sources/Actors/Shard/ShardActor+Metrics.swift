import Foundation

extension ShardActor {
    /// A model's figures for `/metrics`: rows, the drift share of its newest closed whole-model
    /// window (resident models only: reading a parked one would load it), firing alerts.
    struct ModelGauge: Sendable {
        var model: String
        var rows: UInt64
        var driftShare: Double?
        var firing: Int
    }

    /// The live models of this shard, for `/metrics` (docs/operations.md, "Metrics").
    func modelGauges() -> [ModelGauge] {
        var firing: [String: Int] = [:]
        for info in models.alertInfos(state: .firing, includeResolved: false) { firing[info.modelID, default: 0] += 1 }
        return modelSummaries().filter { $0.purgeAfterUnixMs == 0 }.map { summary in
            let newest = models.residentState(summary.name)?.monitor?.latest.values.max { $0.startMs < $1.startMs }
            return ModelGauge(
                model: summary.name, rows: summary.rows, driftShare: newest?.driftShare,
                firing: firing[summary.name] ?? 0)
        }
    }

    /// Entries the slowest follower lacks (on a leader; 0 elsewhere), and entries committed here
    /// but not yet applied.
    func replicationLag() -> (behind: UInt64, unapplied: UInt64) {
        guard let raft else { return (0, 0) }
        let held = raft.heldByEveryFollower ?? raft.lastIndex
        let behind = raft.lastIndex >= held ? raft.lastIndex - held : 0
        let unapplied = raft.commitIndex >= raft.appliedIndex ? raft.commitIndex - raft.appliedIndex : 0
        return (UInt64(behind), UInt64(unapplied))
    }
}
