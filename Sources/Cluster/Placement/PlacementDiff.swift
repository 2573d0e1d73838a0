/// What changes between two placements: the input to hand-off planning.
public struct PlacementDiff: Hashable, Sendable {
    /// One shard whose replica list changed.
    public struct Move: Hashable, Sendable, CustomStringConvertible {
        /// The shard.
        public var shard: ShardID
        /// Replicas before, primary first.
        public var before: [NodeID]
        /// Replicas after, primary first.
        public var after: [NodeID]
        /// The shard's epoch after the change.
        public var epoch: UInt64

        /// Nodes that must receive the shard's data (snapshot plus later ops) before serving it.
        public var gained: [NodeID] { after.filter { !before.contains($0) } }
        /// Nodes that no longer hold the shard and may drop it once the new replicas caught up.
        public var lost: [NodeID] { before.filter { !after.contains($0) } }
        /// Whether the primary changed.
        public var primaryChanged: Bool { before.first != after.first }
        /// A replica that holds the data both before and after, to stream from (prefers the old
        /// primary), or `nil` if every previous replica is gone.
        public var source: NodeID? { before.first { after.contains($0) } ?? before.first }

        public var description: String {
            "\(shard) e\(epoch): [\(before.map(\.rawValue).joined(separator: ","))] -> [\(after.map(\.rawValue).joined(separator: ","))]"
        }
    }

    /// Shards whose replica list changed, ascending.
    public var moves: [Move]

    /// Compares two tables with the same shard count.
    public init(from old: PlacementTable, to new: PlacementTable) {
        precondition(old.settings.shardCount == new.settings.shardCount, "shard counts differ")
        moves = zip(old.assignments, new.assignments).compactMap { before, after in
            before.replicas == after.replicas
                ? nil : Move(shard: after.shard, before: before.replicas, after: after.replicas, epoch: after.epoch)
        }
    }

    /// Whether nothing changed.
    public var isEmpty: Bool { moves.isEmpty }

    /// Shards `node` newly holds and must receive data for.
    public func gains(of node: NodeID) -> [ShardID] {
        moves.filter { $0.gained.contains(node) }.map(\.shard)
    }

    /// Shards `node` no longer holds.
    public func losses(of node: NodeID) -> [ShardID] {
        moves.filter { $0.lost.contains(node) }.map(\.shard)
    }

    /// Shards whose primary changed.
    public var primaryChanges: [ShardID] {
        moves.filter(\.primaryChanged).map(\.shard)
    }

    /// Number of replica slots that changed holder (data that has to be streamed somewhere).
    public var movedReplicas: Int {
        moves.reduce(0) { $0 + $1.gained.count }
    }
}
