import Cluster
import Storage
import Wire

/// One shard's Raft state in RocksDB: the term and vote (`meta` `raft-hard/<shard>`) and the log
/// (`raft-log`, keyed by shard and index). Every change goes through ``add(_:to:)``, which turns a
/// core `RaftPersist` into writes of one batch, so a term, a vote and the entries that depend on
/// them become durable together, through the node's group-commit writer.
struct RaftLogStore: Sendable {
    let store: ShardStore
    let shard: Int

    /// What storage holds for the shard's replica; nil when this node never held one.
    func load() throws(StorageError) -> RaftDurableState? {
        let db = store.database
        let hard = try db.get(StorageKeys.RaftHardState.key(shard: shard), in: store.meta).map {
            (bytes) throws(StorageError) in try StorageKeys.RaftHardState.parseValue(bytes)
        }
        var log: [RaftEntry] = []
        try db.scan(prefix: StorageKeys.Shard.prefix(shard), in: store.raftLog) {
            (entry) throws(StorageError) -> Bool in
            let wire = try decode(Infranaut_V1_RaftLogEntry.self, entry.value, "raft entry of shard \(shard)")
            let decoded: RaftEntry
            do throws(WireError) {
                decoded = try RaftEntry(wire: wire)
            } catch {
                throw StorageError(
                    .corruption, operation: "load the raft log of shard \(shard)", message: error.message)
            }
            let expected = (log.last?.index ?? 0) + 1
            guard decoded.index == expected else {
                throw StorageError(
                    .corruption, operation: "load the raft log of shard \(shard)",
                    message: "entry \(decoded.index) where \(expected) was due")
            }
            log.append(decoded)
            return true
        }
        guard hard != nil || !log.isEmpty else { return nil }
        return RaftDurableState(
            term: hard?.term ?? 0, votedFor: hard?.votedFor.map { NodeID($0) }, log: log)
    }

    /// Adds the writes that make `persist` durable to `batch`.
    func add(_ persist: RaftPersist, to batch: inout WriteBatch) throws(StorageError) {
        if let term = persist.term {
            batch.put(
                StorageKeys.RaftHardState.key(shard: shard),
                StorageKeys.RaftHardState.value(term: term, votedFor: persist.votedFor?.rawValue), in: store.meta)
        }
        if let from = persist.truncateFrom {
            batch.deleteRange(
                from: StorageKeys.RaftLog.key(shard: shard, index: from), to: StorageKeys.Shard.range(shard).end,
                in: store.raftLog)
        }
        for entry in persist.entries {
            batch.put(
                StorageKeys.RaftLog.key(shard: shard, index: entry.index), try encode(entry.wire), in: store.raftLog)
        }
    }
}
