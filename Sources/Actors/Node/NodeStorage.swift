import Cluster
import Foundation
import Logging
import Storage

/// A node's storage: the RocksDB database, the WAL writer, and the shards recovered from them.
///
/// Opening and closing block on RocksDB (opening, recovery scans and the start-up writes can take
/// seconds on a large data directory; stopping the writer waits for its last fsync), so both run on
/// a thread of their own (``offPool(_:_:)``), never on the cooperative pool.
struct NodeStorage: Sendable {
    let database: Database
    let writer: GroupCommitWriter
    let store: ShardStore
    let shards: [ShardActor]
    /// The node id stored in the data dir (or the one given, now stored).
    let nodeID: String
    /// The placement shape (shard count, replica load bound) fixed when the data dir was created.
    let shape: PlacementSettings

    /// Opens the database, starts the writer, reads or stores the placement shape and the node id,
    /// and recovers every shard (sequentially). If a step fails, what was opened is closed again.
    static func open(settings: NodeSettings, logger: Logger, metrics: NodeMetrics? = nil) async throws -> NodeStorage {
        try await offPool("infranaut-storage-open") { () throws -> NodeStorage in
            try openBlocking(settings: settings, logger: logger, metrics: metrics)
        }
    }

    private static func openBlocking(settings: NodeSettings, logger: Logger, metrics: NodeMetrics?) throws
        -> NodeStorage
    {
        try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
        var options = DatabaseOptions()
        options.compression = settings.compression
        options.uncompressedFamilies = ShardStore.uncompressedFamilies
        options.largeValueFamilies = ShardStore.largeValueFamilies
        let database = try Database.open(
            path: settings.dataDirectory + "/rocksdb", columnFamilies: ShardStore.families, options: options)
        var onSync: (@Sendable (Duration) -> Void)?
        if let metrics { onSync = { @Sendable took in metrics.recordSync(took) } }
        let writer = GroupCommitWriter(database: database, onSync: onSync)
        do {
            let store = try ShardStore(database: database)
            let fresh = try store.isFresh
            try store.checkConsensusFormat()
            let nodeID = try store.nodeID(requested: settings.cluster.nodeID)
            // Before the shape is stored, so that a crash in between founds the groups again on the
            // next start. The first node of a new cluster founds every shard's group, with itself as the only
            // voter; the others join empty and are added by the groups' leaders (docs/consensus.md).
            let seeds = settings.cluster.seeds.filter { $0 != settings.cluster.listen }
            if fresh && seeds.isEmpty && settings.cluster.roles.contains(.worker) {
                var batch = WriteBatch()
                for shard in 0..<settings.shardCount {
                    try ShardActor.bootstrapWrites(shard: shard, node: NodeID(nodeID), store: store, into: &batch)
                }
                try database.write(batch, sync: true)
                logger.info("founded a new cluster", metadata: ["shards": "\(settings.shardCount)"])
            }
            var requestedShape = settings.cluster.placement
            requestedShape.shardCount = settings.shardCount
            let shape = try store.placement(requested: requestedShape)
            let shardCount = shape.shardCount
            if shape != requestedShape {
                logger.warning(
                    "data directory was created with another placement shape; using the stored one",
                    metadata: [
                        "stored": "\(shardCount) shards, replica load \(shape.replicaLoadPermille)‰",
                        "requested":
                            "\(settings.shardCount) shards, replica load \(requestedShape.replicaLoadPermille)‰",
                    ])
            }
            let started = ContinuousClock.now
            var shards: [ShardActor] = []
            var shardSettings = settings.shard
            if let metrics { shardSettings.onCheckpoint = { @Sendable took in metrics.recordCheckpoint(took) } }
            for shard in 0..<shardCount {
                shards.append(
                    try ShardActor(
                        shard: shard, nodeID: nodeID, store: store, writer: writer, settings: shardSettings,
                        logger: logger))
            }
            logger.info("recovered", metadata: ["shards": "\(shardCount)", "took": "\(ContinuousClock.now - started)"])
            return NodeStorage(
                database: database, writer: writer, store: store, shards: shards, nodeID: nodeID, shape: shape)
        } catch {
            writer.shutdown()
            database.close()
            throw error
        }
    }

    /// Finishes the batches already queued, stops the writer, and closes the database. The last
    /// step of a node's shutdown, once every shard took its final checkpoint.
    func close() async {
        let writer = self.writer
        let database = self.database
        await offPool("infranaut-storage-close") {
            writer.shutdown()
            database.close()
        }
    }
}
