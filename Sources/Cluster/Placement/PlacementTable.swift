/// The owners of one shard at one epoch.
public struct ShardAssignment: Hashable, Sendable, CustomStringConvertible {
    /// The shard.
    public var shard: ShardID
    /// The replicas, primary first. Empty when there are no live workers.
    public var replicas: [NodeID]
    /// Raised by one every time `replicas` (membership or order) changes on this node.
    public var epoch: UInt64

    /// Creates an assignment.
    public init(shard: ShardID, replicas: [NodeID], epoch: UInt64) {
        self.shard = shard
        self.replicas = replicas
        self.epoch = epoch
    }

    /// The replica that accepts writes, if any.
    public var primary: NodeID? { replicas.first }
    /// The replicas that receive the primary's ops.
    public var followers: ArraySlice<NodeID> { replicas.dropFirst() }

    public var description: String {
        "\(shard) e\(epoch) [\(replicas.map(\.rawValue).joined(separator: ", "))]"
    }
}

/// This node's shard table: the placement of the current membership view plus an epoch per shard.
///
/// Epoch rule: `update(workers:)` recomputes every replica list with `ShardPlacement`, and each
/// shard whose list differs from the previous one (a replica added or removed, or a new primary)
/// gets `epoch + 1`; unchanged shards keep their epoch. Epochs therefore rise monotonically on each
/// node, but two nodes that went through different sequences of views may hold different epochs
/// for the same list. Epochs become agreed, and the single-writer invariant is enforced, through
/// `ShardFence` when a primary claims its shard (see there and docs/membership.md): the table
/// proposes, the fence decides. `observe(epoch:for:)` raises a local epoch to one seen from a
/// peer so later proposals start above it.
public struct PlacementTable: Hashable, Sendable {
    /// Shard count and replication factor.
    public let settings: PlacementSettings
    /// The live workers the placement was computed from, sorted.
    public private(set) var workers: [NodeID] = []
    /// One assignment per shard, indexed by shard number.
    public private(set) var assignments: [ShardAssignment]

    /// An empty table (no workers, every shard unowned at epoch 0).
    public init(settings: PlacementSettings = PlacementSettings()) {
        self.settings = settings
        self.assignments = (0..<settings.shardCount).map {
            ShardAssignment(shard: ShardID($0), replicas: [], epoch: 0)
        }
    }

    /// Recomputes the placement for a new set of live workers and bumps the epoch of every shard
    /// whose replica list changed.
    /// - Returns: what changed, for hand-off planning.
    @discardableResult
    public mutating func update<Workers: Sequence>(workers: Workers) -> PlacementDiff where Workers.Element == NodeID {
        let sorted = Array(Set(workers)).sorted()
        // The placement is a function of the live workers alone: a view change that keeps them
        // (a suspicion, a refuted one, an incarnation bump, a coordinator joining) changes nothing.
        guard sorted != self.workers else {
            return PlacementDiff(from: self, to: self)
        }
        let sets = ShardPlacement.replicaSets(workers: sorted, settings: settings)
        let previous = self
        for index in assignments.indices where assignments[index].replicas != sets[index] {
            assignments[index].replicas = sets[index]
            assignments[index].epoch += 1
        }
        self.workers = sorted
        return PlacementDiff(from: previous, to: self)
    }

    /// Recomputes the placement from a membership view: the live (`alive` or `suspect`) members
    /// with the `worker` role.
    @discardableResult
    public mutating func update(members: [Member]) -> PlacementDiff {
        update(workers: members.lazy.filter { $0.status.isLive && $0.roles.contains(.worker) }.map(\.id))
    }

    /// Raises the local epoch of `shard` to `epoch` if it is higher (an epoch seen from a peer,
    /// for example in a claim or a replicated op).
    public mutating func observe(epoch: UInt64, for shard: ShardID) {
        assignments[shard.rawValue].epoch = max(assignments[shard.rawValue].epoch, epoch)
    }

    /// The assignment of `shard`.
    public func assignment(for shard: ShardID) -> ShardAssignment {
        assignments[shard.rawValue]
    }

    /// The shard a model belongs to.
    public func shard(forModel modelID: String) -> ShardID {
        ShardID(model: modelID, shardCount: settings.shardCount)
    }

    /// The assignment of the shard a model belongs to.
    public func assignment(forModel modelID: String) -> ShardAssignment {
        assignment(for: shard(forModel: modelID))
    }

    /// Shards `node` is primary of, ascending.
    public func primaries(of node: NodeID) -> [ShardID] {
        assignments.filter { $0.primary == node }.map(\.shard)
    }

    /// Shards `node` is a follower of, ascending.
    public func followers(of node: NodeID) -> [ShardID] {
        assignments.filter { $0.followers.contains(node) }.map(\.shard)
    }

    /// Number of shards each worker is primary of.
    public var primaryLoad: [NodeID: Int] {
        var load = Dictionary(uniqueKeysWithValues: workers.map { ($0, 0) })
        for case let primary? in assignments.map(\.primary) { load[primary, default: 0] += 1 }
        return load
    }

    /// Number of shard replicas (primary or follower) each worker holds.
    public var replicaLoad: [NodeID: Int] {
        var load = Dictionary(uniqueKeysWithValues: workers.map { ($0, 0) })
        for assignment in assignments {
            for node in assignment.replicas { load[node, default: 0] += 1 }
        }
        return load
    }

    /// The most replicas one worker holds over the mean (1: perfectly even; 1 without workers).
    public var replicaSkew: Double { Self.skew(replicaLoad) }

    /// The most primaries one worker holds over the mean (1: perfectly even; 1 without workers).
    public var primarySkew: Double { Self.skew(primaryLoad) }

    private static func skew(_ load: [NodeID: Int]) -> Double {
        guard !load.isEmpty else { return 1 }
        let mean = Double(load.values.reduce(0, +)) / Double(load.count)
        return mean == 0 ? 1 : Double(load.values.max() ?? 0) / mean
    }
}
