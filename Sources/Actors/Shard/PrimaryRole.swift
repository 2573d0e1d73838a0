import Wire

/// What a shard keeps while it acts as its shard's primary: the term it writes in, the ops its
/// followers may still lack, what each follower is known to hold, and the ingests waiting for
/// them (docs/replication.md). ``becomeFollower()`` drops the role.
struct PrimaryRole {
    /// The term this shard writes in while it acts as primary; nil while it has not (again).
    var writingTerm: UInt64?
    /// Ops applied here and not yet held by every current follower, in sequence order.
    var outbox: [Infranaut_V1_StoredOp] = []
    /// Per follower peer address: the sequence it is known to hold (nil: not known yet).
    var followerAcked: [String: UInt64] = [:]
    /// Every current follower holds the ops up to here.
    var replicatedThrough: UInt64 = 0
    /// Ingests waiting until their op is on every follower.
    var replicationWaiters: [ReplicationWaiter] = []
    /// Ingests that arrived while the term was being claimed; they share its outcome instead of
    /// being refused (a burst on a shard's first write would otherwise be refused whole).
    var claimWaiters: [CheckedContinuation<Bool, Never>] = []

    /// Drops the primary role: ops written from now on come from another node.
    mutating func becomeFollower() {
        writingTerm = nil
        outbox.removeAll()
        followerAcked.removeAll()
    }
}
