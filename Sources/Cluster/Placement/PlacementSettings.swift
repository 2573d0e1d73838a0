/// Shape of the shard placement. Fixed when the cluster is created and stored with it: every node
/// must use the same values, or they compute different placements.
public struct PlacementSettings: Hashable, Sendable {
    /// Number of shards models are hashed into. Default 1,024: room for a 100-node cluster
    /// (docs/membership.md has the balance by cluster size).
    public var shardCount: Int = 1_024
    /// Replicas per shard: the voters of its Raft group. Default 3 (odd: a group needs a majority).
    public var replicationFactor: Int = 3

    /// Bounded-load factor for replicas: when set, no worker holds more than
    /// `max(ceil(R·S/N), floor(factor × R·S/N))` replicas (overflow moves to the next-best node).
    /// `nil`: pure rendezvous replica sets, which move nothing but the joining or leaving node's
    /// replicas, at the price of uneven data load (the busiest of 100 nodes holds ~1.6× the mean
    /// with 1,024 shards). Default 1.25 (~1.2× at 100 nodes, slightly more moved per join; the
    /// table is in docs/membership.md). Like the shard count, fixed when a data dir is created.
    public var replicaLoadFactor: Double? = 1.25
    /// Bounded-load factor for primaries: no worker is primary of more than
    /// `max(ceil(S/N), floor(factor × S/N))` shards when the replica sets allow it. Default 1.25.
    public var primaryLoadFactor: Double = 1.25

    /// `replicaLoadFactor` in thousandths, 0 without a bound: how it is stored and gossiped.
    public var replicaLoadPermille: Int {
        replicaLoadFactor.map { Int(($0 * 1_000).rounded()) } ?? 0
    }

    /// The most replicas one of `workerCount` workers may hold (`shardCount`, i.e. no bound, by default).
    public func replicaCap(workerCount: Int) -> Int {
        let width = min(replicationFactor, workerCount)
        guard let factor = replicaLoadFactor else { return shardCount }
        return Self.cap(total: shardCount * width, nodes: workerCount, factor: factor)
    }

    /// The most primaries one of `workerCount` workers should hold.
    public func primaryCap(workerCount: Int) -> Int {
        Self.cap(total: shardCount, nodes: workerCount, factor: primaryLoadFactor)
    }

    private static func cap(total: Int, nodes: Int, factor: Double) -> Int {
        guard nodes > 0 else { return 0 }
        let even = (total + nodes - 1) / nodes
        let slack = Int((Double(total) * factor / Double(nodes)).rounded(.down))
        return max(even, slack)
    }

    /// Settings with the documented defaults.
    public init() {}

    /// Settings with the given shape.
    public init(shardCount: Int, replicationFactor: Int) {
        precondition(shardCount > 0 && replicationFactor > 0, "shardCount and replicationFactor must be positive")
        self.shardCount = shardCount
        self.replicationFactor = replicationFactor
    }
}
