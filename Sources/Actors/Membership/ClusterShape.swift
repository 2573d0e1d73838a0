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

    /// Why a frame of `shape` is refused here, or nil when it fits. A frame without a shape comes
    /// from a node that predates shapes, whose shape cannot be known: it is refused too (such a
    /// node accepts frames of any shape and would carry news of members of another shape to
    /// every node it gossips with), so a cluster is upgraded to this version as a whole.
    func mismatch(_ shape: Infranaut_V1_ClusterShape, sender: String) -> String? {
        guard shape != self.shape else { return nil }
        guard shape.shardCount != 0 else {
            return "\(sender) sends no cluster shape: it runs a version from before shapes were checked; "
                + "upgrade every node of a cluster to the same version together"
        }
        func describe(_ shape: Infranaut_V1_ClusterShape) -> String {
            "\(shape.shardCount) shards, replication factor \(shape.replicationFactor), replica load bound \(shape.replicaLoadPermille)‰"
        }
        return "the cluster has \(describe(self.shape)) but \(sender) has \(describe(shape)); "
            + "a node's shards and load bound are fixed when its data dir is created: start that node on a new data dir "
            + "with --shards \(shardCount) --replication-factor \(replicationFactor) --replica-load-factor \(replicaLoadFactor ?? 0)"
    }
}
