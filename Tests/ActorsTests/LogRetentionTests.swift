import Cluster
import Testing

@testable import Actors

/// What a checkpoint lets go of the log: everything every follower holds, so a node with a
/// thousand shards keeps no log for nobody, and on a leader the newest entries a follower lacks,
/// within the entry and byte bounds, so a follower a little behind catches up without a snapshot.
@Suite struct LogRetentionTests {
    /// Entries 1...100 of 100 bytes each.
    static func bytes(_ index: RaftIndex) -> Int? { (1...100).contains(index) ? 100 : nil }

    static func dropThrough(held: RaftIndex?, entries: UInt64 = 128, bytes: Int = 64 << 10) -> RaftIndex {
        ShardActor.logDropThrough(
            checkpoint: 90, firstIndex: 1, heldByEveryFollower: held, retainedEntries: entries, retainedBytes: bytes,
            payloadBytes: Self.bytes)
    }

    @Test func aFollowerKeepsNothingBehindItsCheckpoint() {
        #expect(Self.dropThrough(held: nil) == 90)
    }

    @Test func aLeaderWhoseFollowersHoldEverythingKeepsNothing() {
        #expect(Self.dropThrough(held: 100) == 90)
        #expect(Self.dropThrough(held: 90) == 90)
    }

    @Test func aLeaderKeepsWhatALaggingFollowerLacks() {
        // The slowest follower holds 1...80: 81...90 stay behind the checkpoint.
        #expect(Self.dropThrough(held: 80) == 80)
        // Within the bounds: at most 4 entries, or at most 350 bytes (3 entries of 100).
        #expect(Self.dropThrough(held: 80, entries: 4) == 86)
        #expect(Self.dropThrough(held: 80, bytes: 350) == 87)
        // A follower that has not answered yet (match 0): the newest entries within the bounds.
        #expect(Self.dropThrough(held: 0, entries: 16) == 74)
        // Nothing before the log's first entry.
        #expect(
            ShardActor.logDropThrough(
                checkpoint: 90, firstIndex: 85, heldByEveryFollower: 0, retainedEntries: 128,
                retainedBytes: 64 << 10, payloadBytes: Self.bytes) == 84)
    }
}
