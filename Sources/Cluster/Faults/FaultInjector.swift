public import Logging
import Synchronization

/// A node's fault rules (``FaultRules``) and what the node's transport asks of them: the fault for
/// a frame from a sealed sender id, or for a frame to an address (gossip or peer listener) of a
/// known member. Membership tells it which member listens where (``learn(addresses:)``).
///
/// Every lookup that returns a fault counts one frame dropped or delayed. Rules that have expired
/// are cleared at the first lookup after their expiry, which logs it.
public final class FaultInjector: Sendable {
    /// The rules in force and the frames they affected, for `fault` answers.
    public struct Snapshot: Sendable, Equatable {
        public var faults: [NodeID: FaultRules.Fault]
        public var remaining: Duration
        public var framesDropped: UInt64
        public var framesDelayed: UInt64
    }

    private struct State {
        var rules = FaultRules()
        /// Gossip and peer listener addresses of the members, to name the target of an outgoing frame.
        var nodes: [String: NodeID] = [:]
    }

    public let myself: NodeID
    private let state = Mutex(State())
    /// Read on every node-to-node frame: when false (no rule set, the normal case) lookups skip the
    /// lock. Written only under the lock, together with the rules.
    private let armed = Atomic<Bool>(false)
    private let dropped = Atomic<UInt64>(0)
    private let delayed = Atomic<UInt64>(0)
    private let logger: Logger

    public init(myself: NodeID, logger: Logger) {
        self.myself = myself
        self.logger = logger
    }

    /// Replaces the rules (see ``FaultRules/set(drop:delay:delayBy:lifetime:myself:now:)``).
    /// - Parameter by: who asked (a sealed sender id), for the log.
    @discardableResult
    public func set(drop: [String], delay: [String], delayBy: Duration, lifetime: Duration?, by: String)
        throws(FaultRulesError) -> Snapshot
    {
        let now = ContinuousClock.now
        try state.withLock { state throws(FaultRulesError) in
            try state.rules.set(
                drop: drop, delay: delay, delayBy: delayBy, lifetime: lifetime, myself: myself, now: now)
            armed.store(true, ordering: .releasing)
        }
        let snapshot = self.snapshot
        logger.warning(
            "fault rules set: node-to-node traffic with these nodes is dropped or delayed until they expire or are cleared",
            metadata: [
                "drop": "\(drop.sorted().joined(separator: ","))", "delay": "\(delay.sorted().joined(separator: ","))",
                "delay_by": "\(delayBy)", "expires_in": "\(snapshot.remaining)",
                "by": "\(by)",
            ])
        return snapshot
    }

    /// Removes every rule.
    /// - Parameter by: who asked (a sealed sender id), for the log.
    @discardableResult
    public func clear(by: String) -> Snapshot {
        let had = state.withLock { state in
            defer {
                state.rules.clear()
                armed.store(false, ordering: .releasing)
            }
            return !state.rules.faults.isEmpty
        }
        if had { logger.warning("fault rules cleared", metadata: ["by": "\(by)"]) }
        return snapshot
    }

    /// Records which member listens on which gossip and peer addresses (the whole map, replacing
    /// the previous one).
    public func learn(addresses: [String: NodeID]) {
        state.withLock { $0.nodes = addresses }
    }

    /// The fault for a frame from `sender` (the id a sealed frame names, already verified).
    public func fault(from sender: String) -> FaultRules.Fault? {
        guard armed.load(ordering: .acquiring) else { return nil }
        return lookup { state in NodeID(sender) }
    }

    /// The fault for a frame to `address`, a gossip or peer listener address of a member; nil for an
    /// address no member has announced.
    public func fault(to address: String) -> FaultRules.Fault? {
        guard armed.load(ordering: .acquiring) else { return nil }
        return lookup { state in state.nodes[address] }
    }

    public var snapshot: Snapshot {
        let now = ContinuousClock.now
        let (faults, remaining) = state.withLock { state in
            state.rules.hasExpired(now: now) ? ([:], .zero) : (state.rules.faults, state.rules.remaining(now: now))
        }
        return Snapshot(
            faults: faults, remaining: remaining, framesDropped: dropped.load(ordering: .relaxed),
            framesDelayed: delayed.load(ordering: .relaxed))
    }

    private func lookup(_ node: (State) -> NodeID?) -> FaultRules.Fault? {
        let now = ContinuousClock.now
        let (fault, expired) = state.withLock { state -> (FaultRules.Fault?, Bool) in
            if state.rules.hasExpired(now: now) {
                state.rules.clear()
                armed.store(false, ordering: .releasing)
                return (nil, true)
            }
            return (node(state).flatMap { state.rules.fault(for: $0, now: now) }, false)
        }
        if expired {
            logger.warning("fault rules expired: node-to-node traffic flows again")
        }
        switch fault {
        case .drop: dropped.add(1, ordering: .relaxed)
        case .delay: delayed.add(1, ordering: .relaxed)
        case nil: break
        }
        return fault
    }
}
