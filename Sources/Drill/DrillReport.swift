/// The outcome of a drill. `passed` is false when an acknowledged record is missing, a record was
/// applied twice, a failure was not detected, or ingest did not recover; in a partition drill also
/// when the minority side acknowledged a write it could not commit, or when some model did not
/// accept writes through every node within 10 s of the heal.
public struct DrillReport: Encodable, Sendable {
    public struct Failure: Codable, Sendable {
        public var round: Int
        public var node: String
        /// Models whose shard had the killed node as primary when it was killed.
        public var affectedModels: [String]
        /// Kill until every survivor's `members` reported the node dead; nil: not within 60 s.
        public var detectionSeconds: Double?
        /// Kill until a batch first sent after the kill was acknowledged for every affected
        /// model; nil: not within 60 s.
        public var recoverySeconds: Double?

        enum CodingKeys: String, CodingKey {
            case round, node, affectedModels = "affected_models", detectionSeconds = "detection_seconds",
                recoverySeconds = "recovery_seconds"
        }
    }

    public struct Pause: Codable, Sendable {
        public var round: Int
        public var node: String
        public var seconds: Double
        /// Whether a node reported the paused node dead while it was stopped.
        public var declaredDead: Bool

        enum CodingKeys: String, CodingKey {
            case round, node, seconds, declaredDead = "declared_dead"
        }
    }

    public struct Summary: Codable, Sendable {
        public var median: Double
        public var max: Double

        /// The median and maximum of `values`; nil when there are none.
        static func of(_ values: [Double]) -> Summary? {
            guard let max = values.max() else { return nil }
            let sorted = values.sorted()
            let median =
                sorted.count % 2 == 1
                ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
            return Summary(median: median, max: max)
        }
    }

    /// One round of a partition drill: the partition (one arrangement, or one per flip for
    /// `flap`), the node killed meanwhile, and the recovery after the heal.
    public struct PartitionRound: Codable, Sendable {
        public var round: Int
        public var phases: [PartitionPhase] = []
        /// The majority-side node killed during the partition (restarted after the heal).
        public var killed: String?
        /// Partition start until the heal.
        public var partitionSeconds: Double = 0
        /// Heal until every model had a write acknowledged through every node that was not killed
        /// (probes sent after the heal); nil: not within 60 s.
        public var recoverySeconds: Double?

        enum CodingKeys: String, CodingKey {
            case round, phases, killed, partitionSeconds = "partition_seconds", recoverySeconds = "recovery_seconds"
        }
    }

    /// One arrangement of a partition, from when every node applied its rules until the next
    /// arrangement or the heal.
    public struct PartitionPhase: Codable, Sendable {
        /// For example `{drill-0,drill-1} | {drill-2,drill-3,drill-4}`.
        public var sides: String
        /// Nodes that could not see a majority (empty for a bridge of an odd number of nodes).
        public var minority: [String]
        /// Nodes through which the majority side should take writes (the bridge node, for a bridge).
        public var majority: [String]
        /// Since the round's partition began, and how long this arrangement held.
        public var startSeconds: Double
        public var seconds: Double
        /// Phase start until the client first saw a refusal or a timeout from a minority node (from
        /// a cut-off node when there is no minority); nil: none in this phase.
        public var detectionSeconds: Double?
        /// Phase start until every model had a write acknowledged through every majority-side node
        /// (probes sent after the phase began); nil: not before the phase ended.
        public var failoverSeconds: Double?
        /// Writes acknowledged by minority nodes during the phase.
        public var minorityAcks = 0
        /// Of those, writes of models whose shard did not have most of its voters on the minority
        /// side, neither in the ring read just before the phase nor in the one read as it ended:
        /// writes the minority could not commit.
        public var minorityAcksWithoutReplicaMajority = 0
        /// Each such write: model, key, the node that acknowledged it, and both voter readings.
        public var unexplainedAcks: [String] = []

        enum CodingKeys: String, CodingKey {
            case sides, minority, majority, startSeconds = "start_seconds", seconds
            case detectionSeconds = "detection_seconds", failoverSeconds = "failover_seconds"
            case minorityAcks = "minority_acks"
            case minorityAcksWithoutReplicaMajority = "minority_acks_without_replica_majority"
            case unexplainedAcks = "unexplained_acks"
        }
    }

    public var nodes: Int
    public var killPerRound: Int
    public var rounds: Int
    public var roundSeconds: Double
    public var failures: [Failure] = []
    public var pauses: [Pause] = []
    /// The partition scenario, when the drill partitioned the cluster instead of killing nodes.
    public var partition: PartitionScenario?
    public var partitions: [PartitionRound] = []
    /// Over every phase of every partition.
    public var minorityAcks = 0
    public var minorityAcksWithoutReplicaMajority = 0
    public var detection: Summary?
    public var recovery: Summary?
    /// Partition drills: phase start until every model took writes through the majority side.
    public var failover: Summary?
    public var batchesSent = 0
    public var batchesAcknowledged = 0
    public var recordsAcknowledged = 0
    /// Batches still unacknowledged when the client gave up (they may or may not be applied).
    public var batchesUnresolved = 0
    /// Acknowledged records the cluster does not hold.
    public var recordsLost = 0
    /// Records the cluster applied more than once.
    public var recordsDuplicated = 0
    /// Retryable refusals and transport failures the client retried.
    public var retries = 0
    public var problems: [String] = []
    public var passed: Bool { problems.isEmpty }

    enum CodingKeys: String, CodingKey {
        case nodes, killPerRound = "kill_per_round", rounds, roundSeconds = "round_seconds", failures, pauses
        case partition, partitions, minorityAcks = "minority_acks"
        case minorityAcksWithoutReplicaMajority = "minority_acks_without_replica_majority"
        case detection, recovery, failover, batchesSent = "batches_sent", batchesAcknowledged = "batches_acknowledged"
        case recordsAcknowledged = "records_acknowledged", batchesUnresolved = "batches_unresolved"
        case recordsLost = "records_lost", recordsDuplicated = "records_duplicated", retries, problems, passed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(nodes, forKey: .nodes)
        try container.encode(killPerRound, forKey: .killPerRound)
        try container.encode(rounds, forKey: .rounds)
        try container.encode(roundSeconds, forKey: .roundSeconds)
        try container.encode(failures, forKey: .failures)
        try container.encode(pauses, forKey: .pauses)
        if let partition {
            try container.encode(partition.rawValue, forKey: .partition)
            try container.encode(partitions, forKey: .partitions)
            try container.encode(minorityAcks, forKey: .minorityAcks)
            try container.encode(minorityAcksWithoutReplicaMajority, forKey: .minorityAcksWithoutReplicaMajority)
        }
        try container.encodeIfPresent(detection, forKey: .detection)
        try container.encodeIfPresent(recovery, forKey: .recovery)
        try container.encodeIfPresent(failover, forKey: .failover)
        try container.encode(batchesSent, forKey: .batchesSent)
        try container.encode(batchesAcknowledged, forKey: .batchesAcknowledged)
        try container.encode(recordsAcknowledged, forKey: .recordsAcknowledged)
        try container.encode(batchesUnresolved, forKey: .batchesUnresolved)
        try container.encode(recordsLost, forKey: .recordsLost)
        try container.encode(recordsDuplicated, forKey: .recordsDuplicated)
        try container.encode(retries, forKey: .retries)
        try container.encode(problems, forKey: .problems)
        try container.encode(passed, forKey: .passed)
    }
}
