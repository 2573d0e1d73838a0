/// Node-local fault injection for partition drills: which peers' traffic this node drops or delays,
/// and until when. A pure value; ``FaultInjector`` holds the node's rules, and the node's transport
/// (gossip in and out, peer requests in and out) asks it about every node-to-node frame.
///
/// Invariants:
/// 1. Rules are per remote node id and apply on this node to both directions: frames to the node
///    are not sent (or sent late), frames from it are discarded (or handled late). Rules on one end
///    of a link therefore cut the link both ways.
/// 2. Rules always expire (at most ``Limits/maxLifetime`` after they were set), so a drill that
///    dies cannot leave a node partitioned.
/// 3. A request that is refused changes nothing: the rules in force stay as they were.
public struct FaultRules: Sendable, Equatable {
    /// What happens to the traffic with one node.
    public enum Fault: Sendable, Equatable {
        case drop
        case delay(Duration)
    }

    /// Bounds on one set of rules.
    public enum Limits {
        /// Nodes named in one request (drop and delay together).
        public static let maxNodes = 1_024
        /// A node id travels in a sealed frame's header, whose sender length is one byte.
        public static let maxNodeIDBytes = 255
        /// Longer than every timeout between nodes (forwards 2 s, replication 1.5 s, SWIM probes),
        /// so a longer delay would only be a drop that is harder to read.
        public static let maxDelay: Duration = .seconds(10)
        /// Rules set without a lifetime last this long.
        public static let defaultLifetime: Duration = .seconds(600)
        public static let maxLifetime: Duration = .seconds(3_600)
    }

    /// The fault per remote node; empty when no rule is in force.
    public private(set) var faults: [NodeID: Fault] = [:]
    /// When the rules stop applying; nil when there are none.
    public private(set) var expiresAt: ContinuousClock.Instant?

    public init() {}

    /// Replaces the rules in force. On error nothing changes, and the error names what was wrong.
    /// - Parameters:
    ///   - drop: node ids whose traffic with this node is dropped.
    ///   - delay: node ids whose traffic with this node is delayed by `delayBy`.
    ///   - delayBy: zero when `delay` is empty; otherwise up to ``Limits/maxDelay``.
    ///   - lifetime: how long the rules stay in force; nil for ``Limits/defaultLifetime``.
    ///   - myself: this node's id, which no rule may name.
    public mutating func set(
        drop: [String], delay: [String], delayBy: Duration, lifetime: Duration?, myself: NodeID,
        now: ContinuousClock.Instant
    ) throws(FaultRulesError) {
        guard !drop.isEmpty || !delay.isEmpty else {
            throw FaultRulesError("names no node to drop or delay; to remove the rules, clear them")
        }
        guard drop.count + delay.count <= Limits.maxNodes else {
            throw FaultRulesError("names \(drop.count + delay.count) nodes; at most \(Limits.maxNodes)")
        }
        var faults: [NodeID: Fault] = [:]
        for (ids, fault) in [(drop, Fault.drop), (delay, .delay(delayBy))] {
            for id in ids {
                guard !id.isEmpty, id.utf8.count <= Limits.maxNodeIDBytes else {
                    throw FaultRulesError(
                        "a node id must be 1 to \(Limits.maxNodeIDBytes) bytes (got \(id.utf8.count))")
                }
                guard NodeID(id) != myself else {
                    throw FaultRulesError("names \(myself), the node that would apply it; a node cannot cut itself off")
                }
                guard faults.updateValue(fault, forKey: NodeID(id)) == nil else {
                    throw FaultRulesError("names \(id) twice (in drop and delay, or twice in one list)")
                }
            }
        }
        if delay.isEmpty {
            guard delayBy == .zero else { throw FaultRulesError("sets a delay but names no node to delay") }
        } else {
            guard delayBy > .zero, delayBy <= Limits.maxDelay else {
                throw FaultRulesError(
                    "delays by \(delayBy.milliseconds) ms; the delay must be 1 to \(Limits.maxDelay.milliseconds) ms")
            }
        }
        let lifetime = lifetime ?? Limits.defaultLifetime
        guard lifetime > .zero, lifetime <= Limits.maxLifetime else {
            throw FaultRulesError(
                "would last \(lifetime.milliseconds) ms; rules last 1 to \(Limits.maxLifetime.milliseconds) ms (1 hour)"
            )
        }
        self.faults = faults
        expiresAt = now + lifetime
    }

    /// Removes every rule.
    public mutating func clear() {
        faults = [:]
        expiresAt = nil
    }

    /// What happens to the traffic with `peer` at `now`: nil when it passes unchanged.
    public func fault(for peer: NodeID, now: ContinuousClock.Instant) -> Fault? {
        guard let expiresAt, now < expiresAt else { return nil }
        return faults[peer]
    }

    /// Whether rules were set and have expired by `now` (the shell then clears them and says so).
    public func hasExpired(now: ContinuousClock.Instant) -> Bool {
        expiresAt.map { now >= $0 } ?? false
    }

    /// Time left until the rules expire; zero when there are none.
    public func remaining(now: ContinuousClock.Instant) -> Duration {
        expiresAt.map { max(.zero, $0 - now) } ?? .zero
    }
}

/// Why a set of fault rules was refused.
public struct FaultRulesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, starting with a verb ("names no node to drop or delay; ...").
    public var message: String

    init(_ message: String) { self.message = message }

    public var description: String { "fault rules refused: the request \(message)" }
}
