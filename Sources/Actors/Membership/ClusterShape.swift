import Cluster
import Wire

/// The cluster's shape as gossip carries it: every frame says how many shards and replicas its
/// sender places, and a node drops frames of another shape. Two nodes that disagree on either
/// would hash the same model to different shards or replicate it to different nodes, so they
/// must never see each other as members; the node that is refused is told why.
extension PlacementSettings {
    var shape: Infranaut_V1_ClusterShape {
        .with {
            $0.shardCount = UInt32(shardCount)
            $0.replicationFactor = UInt32(replicationFactor)
            $0.replicaLoadPermille = UInt32(replicaLoadPermille)
        }
    }

    /// Why a frame of `shape` is refused here, or nil when it fits (or predates shapes).
    func mismatch(_ shape: Infranaut_V1_ClusterShape, sender: String) -> String? {
        guard shape.shardCount != 0, shape != self.shape else { return nil }
        func describe(_ shape: Infranaut_V1_ClusterShape) -> String {
            "\(shape.shardCount) shards, replication factor \(shape.replicationFactor), replica load bound \(shape.replicaLoadPermille)‰"
        }
        return "the cluster has \(describe(self.shape)) but \(sender) has \(describe(shape)); "
            + "a node's shards and load bound are fixed when its data dir is created: start that node on a new data dir "
            + "with --shards \(shardCount) --replication-factor \(replicationFactor) --replica-load-factor \(replicaLoadFactor ?? 0)"
    }
}
