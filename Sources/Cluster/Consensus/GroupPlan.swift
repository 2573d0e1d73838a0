/// What a shard's Raft leader does next to bring its group's voters to the replicas the placement
/// wants. Pure: the leader's shell calls ``next(voters:leader:desired:status:)`` whenever the
/// membership view or the group changes, and proposes at most one change at a time (the core
/// refuses a second one while the first is uncommitted).
///
/// Rules, in order:
/// 1. A voter the membership knows to be gone (`dead` or `left`) and the placement no longer wants
///    is removed first: removing it cannot cost availability (it answers nobody), while adding a
///    new, empty voter first would raise the quorum while a voter is missing.
/// 2. A wanted node that is alive and not yet a voter is added. The others still form a majority
///    while it catches up.
/// 3. A voter the placement no longer wants is removed once every wanted node is a voter; when it
///    is the leader itself, leadership moves to a wanted voter first.
/// 4. Leadership moves to the placement's first replica when that is a live voter, so leaders
///    spread over the nodes as evenly as the placement's primaries do (a new cluster's founder
///    would otherwise lead every group).
/// A node that is merely suspected is never added or removed: the membership view proposes,
/// Raft's configuration entries decide.
public enum GroupPlan {
    public enum Change: Hashable, Sendable {
        case add(NodeID)
        case remove(NodeID)
        case transferLeadership(to: NodeID)
    }

    /// What the membership view says about a node.
    public enum Liveness: Sendable {
        case alive, suspect, gone
    }

    /// The next change, or nil when the voters are what the placement wants (or nothing can be
    /// done safely now).
    /// - Parameters:
    ///   - voters: the group's current voters.
    ///   - leader: this node, the group's leader.
    ///   - desired: the replicas the placement wants, in placement order; empty when the view does
    ///     not know (then nothing changes).
    ///   - liveness: the membership's view of a node.
    ///   - caughtUp: whether a voter's log is known to match the leader's (rebalancing waits for it,
    ///     since the leader refuses writes while a transfer runs).
    public static func next(
        voters: Set<NodeID>, leader: NodeID, desired: [NodeID], liveness: (NodeID) -> Liveness,
        caughtUp: (NodeID) -> Bool = { _ in true }
    ) -> Change? {
        guard !desired.isEmpty else { return nil }
        let wanted = Set(desired)
        let unwanted = voters.subtracting(wanted).sorted()
        if let gone = unwanted.first(where: { $0 != leader && liveness($0) == .gone }) {
            return .remove(gone)
        }
        if let missing = desired.first(where: { !voters.contains($0) && liveness($0) == .alive }) {
            return .add(missing)
        }
        guard wanted.isSubset(of: voters) else { return nil }
        if let extra = unwanted.first(where: { $0 != leader }) {
            return .remove(extra)
        }
        if unwanted.contains(leader) {
            guard let successor = desired.first(where: { voters.contains($0) && liveness($0) == .alive }) else {
                return nil
            }
            return .transferLeadership(to: successor)
        }
        if let preferred = desired.first, preferred != leader, voters.contains(preferred),
            liveness(preferred) == .alive, caughtUp(preferred)
        {
            return .transferLeadership(to: preferred)
        }
        return nil
    }
}
