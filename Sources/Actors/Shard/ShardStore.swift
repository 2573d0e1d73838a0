public import Cluster
import Foundation
public import Storage
import SwiftProtobuf
import Wire

/// The node's RocksDB database and its column families. One database per node, shared by its
/// shards; the key layout (every family's keys and every `meta` entry) is in `StorageKeys`
/// (Sources/Storage/Layout/StorageKeys.swift).
///
/// Invariant: for every shard, `models` and `idempotency` hold the shard's state machine at exactly
/// the Raft entry recorded in `meta` `raft-snapshot/<shard>`, and `raft-log` holds every entry after
/// it. Both change only in atomic batches that also move that record: a checkpoint
/// (`ShardActor.checkpoint()`) and the install of a snapshot received from the leader
/// (ShardActor+Snapshots.swift). So a crash at any point leaves a checkpoint plus the log after it,
/// from which the group re-applies every committed entry. The `ops` family of data dirs written
/// before consensus is still opened (RocksDB opens every family a database has) so that such a
/// dir reaches the start-up check that refuses it, and is otherwise unused.
public struct ShardStore: Sendable {
    public let database: Database
    public let models: ColumnFamily
    public let idempotency: ColumnFamily
    public let meta: ColumnFamily
    /// The shards' Raft logs.
    public let raftLog: ColumnFamily
    /// Closed windows' results, per model in time order.
    public let windows: ColumnFamily
    /// Predictions kept for their labels (docs/performance.md).
    public let predictions: ColumnFamily
    /// Models held by the node's shards (every shard gets a copy of this store, so they share it).
    public let modelCount = ModelCount()

    public static let families = StorageKeys.families
    /// Families of serialized profiles (model snapshots, window results), which compress little.
    public static let uncompressedFamilies: Set<String> = [StorageKeys.Models.family, StorageKeys.Windows.family]
    /// Families whose large values go to blob files: model snapshots, rewritten whole at every
    /// checkpoint.
    public static let largeValueFamilies: Set<String> = [StorageKeys.Models.family]

    public init(database: Database) throws(StorageError) {
        self.database = database
        models = try database.columnFamily(StorageKeys.Models.family)
        idempotency = try database.columnFamily(StorageKeys.Idempotency.family)
        meta = try database.columnFamily(StorageKeys.meta)
        raftLog = try database.columnFamily(StorageKeys.RaftLog.family)
        windows = try database.columnFamily(StorageKeys.Windows.family)
        predictions = try database.columnFamily(StorageKeys.Predictions.family)
    }

    /// The placement shape stored in the data dir (shard count and replica bound), storing
    /// `requested`'s when there is none yet. A data dir that predates the stored bound keeps the
    /// unbounded placement it was created with. The replication factor is not stored: it is a flag
    /// every node of a cluster must agree on (gossip refuses nodes that differ).
    public func placement(requested: PlacementSettings) throws(StorageError) -> PlacementSettings {
        // The bound is stored and gossiped in thousandths: place with exactly that value, on the
        // first start as after a restart (1.0055 would otherwise place differently from the 1.006
        // every other node and every restart reads back).
        var shape = requested
        shape.replicaLoadFactor =
            requested.replicaLoadPermille == 0 ? nil : Double(requested.replicaLoadPermille) / 1_000
        if let stored = try database.get(StorageKeys.ShardCount.key, in: meta) {
            shape.shardCount = try StorageKeys.ShardCount.parseValue(stored)
            let bound =
                try database.get(StorageKeys.ReplicaLoad.key, in: meta).map { bytes throws(StorageError) in
                    try StorageKeys.ReplicaLoad.parseValue(bytes)
                } ?? 0
            shape.replicaLoadFactor = bound == 0 ? nil : Double(bound) / 1_000
            return shape
        }
        var batch = WriteBatch()
        batch.put(StorageKeys.ShardCount.key, StorageKeys.ShardCount.value(requested.shardCount), in: meta)
        batch.put(
            StorageKeys.ReplicaLoad.key, StorageKeys.ReplicaLoad.value(permille: requested.replicaLoadPermille),
            in: meta)
        try database.write(batch, sync: true)
        return shape
    }

    /// The node id: `requested` when given (and then stored), else the stored one, else a new one.
    public func nodeID(requested: String) throws(StorageError) -> String {
        if !requested.isEmpty {
            try database.put(StorageKeys.NodeID.key, StorageKeys.NodeID.value(requested), in: meta, sync: true)
            return requested
        }
        if let stored = try database.get(StorageKeys.NodeID.key, in: meta) {
            return StorageKeys.NodeID.parseValue(stored)
        }
        let generated = "node-" + UUID().uuidString.prefix(8).lowercased()
        try database.put(StorageKeys.NodeID.key, StorageKeys.NodeID.value(generated), in: meta, sync: true)
        return generated
    }

    /// Whether the data dir is new (nothing was ever stored in it).
    var isFresh: Bool {
        get throws(StorageError) { try database.get(StorageKeys.ShardCount.key, in: meta) == nil }
    }

    /// Marks a new data dir as replicated by consensus, or refuses one written before consensus
    /// existed: its shards were copied by primary–backup replication, and no replica's copy can be
    /// trusted to be a group's committed state.
    func checkConsensusFormat() throws(StorageError) {
        if try database.get(StorageKeys.Consensus.key, in: meta) != nil { return }
        if try !isFresh {
            throw StorageError(
                .corruption, operation: "open the data directory",
                message:
                    "it was written by a version before consensus replication (no \"consensus\" marker); start this node with a new --data-dir and let the cluster's groups copy their state to it"
            )
        }
        try database.put(StorageKeys.Consensus.key, StorageKeys.Consensus.value, in: meta, sync: true)
    }
}

func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8], _ what: @autoclosure () -> String)
    throws(StorageError) -> M
{
    do {
        return try M(serializedBytes: bytes)
    } catch {
        throw StorageError(
            .corruption, operation: "decode \(what())",
            message: "\(bytes.count) stored bytes are not a valid \(M.protoMessageName)",
            cause: error)
    }
}

func encode(_ message: some SwiftProtobuf.Message) throws(StorageError) -> [UInt8] {
    do {
        return try message.serializedBytes()
    } catch {
        throw StorageError(
            .encoding, operation: "encode \(type(of: message).protoMessageName)",
            message: "the message could not be serialized",
            cause: error)
    }
}
