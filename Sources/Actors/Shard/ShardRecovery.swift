import Foundation
import Monitoring
import Storage
import Wire

/// Rebuilds a shard's memory from RocksDB: model snapshots as of the checkpoint, then every op
/// after it, in sequence order, then the idempotency keys still inside their window.
enum ShardRecovery {
    struct Result {
        var models: [String: ModelState] = [:]
        var checkpoint: UInt64 = 0
        var lastSequence: UInt64 = 0
        var lastTerm: UInt64 = 0
        var replayed = 0
        var idempotency: [(model: String, key: String, record: Infranaut_V1_IdempotencyRecord)] = []
    }

    static func recover(shard: Int, store: ShardStore) throws(StorageError) -> Result {
        var result = Result()
        let db = store.database
        let prefix = StorageKeys.Shard.prefix(shard)
        let checkpoint = try store.checkpoint(shard: shard)
        result.checkpoint = checkpoint.sequence
        result.lastSequence = checkpoint.sequence
        result.lastTerm = checkpoint.term

        try db.scan(prefix: prefix, in: store.models) { (entry) throws(StorageError) -> Bool in
            let snapshot = try decode(Infranaut_V1_ModelSnapshot.self, entry.value, "model snapshot of shard \(shard)")
            do throws(ProfileDecodingError) {
                result.models[snapshot.modelID] = try ModelState(snapshot: snapshot)
            } catch {
                throw StorageError(
                    .corruption, operation: "load model \(snapshot.modelID) of shard \(shard)",
                    message: "its stored profiles cannot be decoded",
                    cause: error)
            }
            return true
        }

        let from = StorageKeys.Ops.key(shard: shard, sequence: result.checkpoint + 1)
        try db.scan(prefix: prefix, from: from, in: store.ops) { (entry) throws(StorageError) -> Bool in
            let op = try decode(Infranaut_V1_StoredOp.self, entry.value, "op of shard \(shard)")
            guard op.sequence > result.lastSequence else {
                throw StorageError(
                    .corruption, operation: "replay shard \(shard)",
                    message: "op \(op.sequence) after \(result.lastSequence)")
            }
            let model = op.batch.modelID
            result.models[model, default: ModelState(modelID: model)].apply(op)
            result.lastSequence = op.sequence
            result.lastTerm = op.term
            result.replayed += 1
            return true
        }

        try db.scan(prefix: prefix, in: store.idempotency) { (entry) throws(StorageError) -> Bool in
            let (_, model, key) = try StorageKeys.Idempotency.parse(entry.key)
            let record = try decode(Infranaut_V1_IdempotencyRecord.self, entry.value, "idempotency record")
            // Expired keys are loaded too: the next checkpoint's pruning deletes them from disk.
            result.idempotency.append((model, key, record))
            return true
        }
        return result
    }
}
