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
        let snapshot = try loadSnapshotMeta()
        let covered = snapshot?.index ?? 0
        var log: [RaftEntry] = []
        let from = StorageKeys.RaftLog.key(shard: shard, index: covered + 1)
        try db.scan(prefix: StorageKeys.Shard.prefix(shard), from: from, in: store.raftLog) {
            (entry) throws(StorageError) -> Bool in
            let wire = try decode(Infranaut_V1_RaftLogEntry.self, entry.value, "raft entry of shard \(shard)")
            let decoded: RaftEntry
            do throws(WireError) {
                decoded = try RaftEntry(wire: wire)
            } catch {
                throw StorageError(
                    .corruption, operation: "load the raft log of shard \(shard)", message: error.message)
            }
            let expected = (log.last?.index ?? covered) + 1
            guard decoded.index == expected else {
                throw StorageError(
                    .corruption, operation: "load the raft log of shard \(shard)",
                    message: "entry \(decoded.index) where \(expected) was due")
            }
            log.append(decoded)
            return true
        }
        guard hard != nil || !log.isEmpty || snapshot != nil else { return nil }
        return RaftDurableState(
            term: hard?.term ?? 0, votedFor: hard?.votedFor.map { NodeID($0) }, snapshot: snapshot, log: log)
    }

    /// The metadata of the shard's durable checkpoint, if it has one.
    func loadSnapshotMeta() throws(StorageError) -> RaftSnapshotMeta? {
        guard let bytes = try store.database.get(StorageKeys.RaftSnapshot.key(shard: shard), in: store.meta) else {
            return nil
        }
        let wire = try decode(Infranaut_V1_RaftSnapshotMeta.self, bytes, "raft snapshot metadata of shard \(shard)")
        do throws(WireError) {
            return try RaftSnapshotMeta(wire: wire)
        } catch {
            throw StorageError(.corruption, operation: "load the checkpoint of shard \(shard)", message: error.message)
        }
    }

    /// Adds the writes that record `meta` as the shard's checkpoint and drop the stored entries up
    /// to `dropThrough` (at most `meta.index`) to `batch`.
    func addCheckpoint(_ meta: RaftSnapshotMeta, droppingThrough dropThrough: RaftIndex, to batch: inout WriteBatch)
        throws(StorageError)
    {
        batch.put(StorageKeys.RaftSnapshot.key(shard: shard), try encode(meta.wire), in: store.meta)
        if dropThrough > 0 {
            batch.deleteRange(
                from: StorageKeys.RaftLog.key(shard: shard, index: 0),
                to: StorageKeys.RaftLog.key(shard: shard, index: dropThrough + 1), in: store.raftLog)
        }
    }

    /// Adds the writes that make `persist` durable to `batch`. A persist with a snapshot (one
    /// received from the leader) records it as the checkpoint and drops every entry it covers; the
    /// shard's state from the snapshot goes into the same batch (``ShardActor``).
    func add(_ persist: RaftPersist, to batch: inout WriteBatch) throws(StorageError) {
        if let snapshot = persist.snapshot {
            try addCheckpoint(snapshot, droppingThrough: snapshot.index, to: &batch)
        }
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
