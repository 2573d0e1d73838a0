/// The single-writer guard a replica keeps for one shard (persist `acceptedEpoch` with the shard).
///
/// Protocol the shell runs with it (docs/membership.md, "Epochs"):
/// 1. A node that becomes primary of a shard in its `PlacementTable` proposes
///    `ShardFence.claimEpoch(local:observed:)`, higher than every epoch it has seen for the shard,
///    and sends `claim(shard, epoch)` to the other replicas of the assignment.
/// 2. A replica grants the claim with `grant(_:)` only if the epoch is higher than what it has
///    accepted, persists the new epoch before answering, and answers with its `acceptedEpoch`
///    either way, so a refused claimant learns the epoch to beat.
/// 3. The primary serves writes only after every live replica of the assignment granted, and
///    only while `SWIMInstance.seesMajority` holds.
/// 4. Replicas apply replicated ops only if `admits(_:)` (the op's epoch is the accepted one):
///    ops from an older epoch are refused, so once a new primary's claim is granted the old one
///    can no longer get a write acknowledged by that replica.
public struct ShardFence: Hashable, Sendable {
    /// The highest epoch this replica has granted for the shard.
    public private(set) var acceptedEpoch: UInt64

    /// A fence that has accepted `acceptedEpoch` (0 for a new shard).
    public init(acceptedEpoch: UInt64 = 0) {
        self.acceptedEpoch = acceptedEpoch
    }

    /// Grants a primary's claim at `epoch` if it is newer than any granted before.
    /// - Returns: whether the claim was granted (persist `acceptedEpoch` before replying).
    public mutating func grant(_ epoch: UInt64) -> Bool {
        guard epoch > acceptedEpoch else { return false }
        acceptedEpoch = epoch
        return true
    }

    /// Whether a replicated op stamped with `epoch` may be applied: only the current epoch is.
    public func admits(_ epoch: UInt64) -> Bool {
        epoch == acceptedEpoch
    }

    /// The epoch a new primary claims: above its own table's epoch and above every epoch
    /// replicas have reported.
    public static func claimEpoch<Observed: Sequence>(local: UInt64, observed: Observed) -> UInt64
    where Observed.Element == UInt64 {
        observed.reduce(local, max) + 1
    }
}
