/// The outcome of a drill. `passed` is false when an acknowledged record is missing, a record was
/// applied twice, a failure was not detected, or ingest did not recover.
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
    }

    public var nodes: Int
    public var killPerRound: Int
    public var rounds: Int
    public var roundSeconds: Double
    public var failures: [Failure] = []
    public var pauses: [Pause] = []
    public var detection: Summary?
    public var recovery: Summary?
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
        case detection, recovery, batchesSent = "batches_sent", batchesAcknowledged = "batches_acknowledged"
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
        try container.encodeIfPresent(detection, forKey: .detection)
        try container.encodeIfPresent(recovery, forKey: .recovery)
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
