/// Quorum arithmetic for the minority-side rule: a node that cannot see a majority of the
/// members it knows stops acting as a primary.
public enum MajorityCheck {
    /// Whether `reachable` members (this node included) are a strict majority of `known` members.
    /// - Parameters:
    ///   - reachable: members this node currently sees as live, itself included.
    ///   - known: every member this node knows of that has not left gracefully (dead ones count).
    public static func hasMajority(reachable: Int, known: Int) -> Bool {
        guard known > 0 else { return true }
        return reachable * 2 > known
    }
}
