import Cluster
import Synchronization

/// model id -> shard actor, by the cluster's stable hash (the same one the placement uses).
struct Router: Sendable {
    let shards: [ShardActor]

    /// The shard `model` belongs to: the one place a node hashes a model id (the placement then
    /// answers who holds that shard, and ``shard(_:)`` which local actor serves it).
    func shardID(for model: String) -> ShardID {
        ShardID(model: model, shardCount: shards.count)
    }

    func shard(_ id: ShardID) -> ShardActor {
        shards[id.rawValue]
    }

    func shard(number: UInt32) -> ShardActor? {
        Int(number) < shards.count ? shards[Int(number)] : nil
    }
}

/// Bytes of ingest requests being applied (admitted but not finished).
final class InFlightBytes: Sendable {
    private let bytes = Mutex(0)

    func admit(_ size: Int, limit: Int) -> Bool {
        bytes.withLock { current in
            guard current == 0 || current + size <= limit else { return false }
            current += size
            return true
        }
    }

    func release(_ size: Int) { bytes.withLock { $0 -= size } }
}
