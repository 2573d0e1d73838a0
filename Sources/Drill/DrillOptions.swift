import Cluster

/// What a drill does (see ``Drill``).
public struct DrillOptions: Sendable {
    /// The `infranaut` binary that runs the nodes.
    public var binary: String
    public var nodes = 3
    /// Nodes killed with SIGKILL in each round, at the same moment. With `partition`: 0 or 1, a
    /// node of the majority side, killed a third of the way into the partition and restarted after
    /// the heal.
    public var kill = 1
    /// When set, each round partitions the cluster (fault rules on every node) instead of killing
    /// nodes: a third of the way in, for a third of the round; then heals it (see ``Drill``).
    public var partition: PartitionScenario?
    /// Seed of the random splits of `flap`.
    public var seed: UInt64 = 1
    /// Length of one round: load before the kill, the failure, and load after it.
    public var duration: Duration = .seconds(20)
    public var rounds = 1
    /// When set, each round also stops one surviving node with SIGSTOP for this long, then SIGCONT.
    public var pause: Duration?
    /// Batches per second the client sends, in all.
    public var rate = 400
    public var rowsPerBatch = 20
    /// Where the nodes keep their data and logs; a fresh temporary directory when nil (removed
    /// afterwards unless `keepData`).
    public var workDirectory: String?
    public var keepData = false
    /// The nodes' replication factor (the kill count must leave every shard a majority of it).
    public var replicationFactor = 3
    /// The nodes' shard count (nil: the nodes' default), to drill the shape a cluster runs with.
    public var shards: Int?
    /// More flags for every node (`--node-arg`), e.g. to drill with models parked after 1 s.
    public var nodeArguments: [String] = []
    /// Progress lines, as they happen.
    public var progress: @Sendable (String) -> Void = { _ in }

    public init(binary: String) { self.binary = binary }

    /// Why these options cannot give a meaningful drill, or nil.
    public var problem: String? {
        if nodes < 2 { return "--nodes must be at least 2" }
        if nodes > 16 { return "--nodes must be at most 16 (every node is a local process)" }
        if let partition { return partitionProblem(partition) }
        if kill < 1 { return "--kill must be at least 1" }
        if kill > (nodes - 1) / 2 {
            return "--kill \(kill) of \(nodes) nodes leaves no majority; at most \((nodes - 1) / 2) (use more nodes)"
        }
        if kill > (replicationFactor - 1) / 2 {
            return
                "--kill \(kill) would take a majority of some shards' replicas (replication factor \(replicationFactor)), which then cannot commit; at most \((replicationFactor - 1) / 2)"
        }
        return commonProblem ?? pauseProblem
    }

    private func partitionProblem(_ partition: PartitionScenario) -> String? {
        if nodes < 3 { return "--partition needs at least 3 nodes: a majority side and a minority side" }
        if kill < 0 || kill > 1 {
            return "--kill with --partition is 0 or 1: one node of the majority side, killed during the partition"
        }
        if kill > (replicationFactor - 1) / 2 {
            return
                "--kill \(kill) would take a majority of some shards' replicas (replication factor \(replicationFactor)), which then cannot commit"
        }
        if pause != nil { return "--pause does not combine with --partition" }
        if duration < .seconds(9) {
            return "--duration must be at least 9 s with --partition: load, partition and heal take a third each"
        }
        return commonProblem
    }

    private var commonProblem: String? {
        if rounds < 1 { return "--rounds must be at least 1" }
        if duration < .seconds(6) { return "--duration must be at least 6 s: load runs a third of it before the kill" }
        if duration * rounds > .seconds(480) {
            return
                "--duration × --rounds must stay under 8 minutes: receipts are checked within the nodes' 10-minute idempotency window"
        }
        if rate < 1 || rate > 20_000 { return "--rate must be between 1 and 20000 batches per second" }
        if Double(rate) * duration.inSeconds * Double(rounds) > 2_000_000 {
            return
                "--rate × --duration × --rounds would send over 2,000,000 batches; the drill keeps every one in memory to audit it"
        }
        return nil
    }

    private var pauseProblem: String? {
        if let pause {
            if pause <= .zero { return "--pause must be positive" }
            if nodes - kill - 1 < nodes / 2 + 1 {
                return
                    "--pause needs a node to spare: with \(kill) killed and one paused, \(nodes) nodes keep no majority (use at least \(2 * kill + 3))"
            }
        }
        return nil
    }
}
