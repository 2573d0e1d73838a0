import Cluster
import Storage
import Testing
import Wire

@testable import Actors

@Suite("cluster shape: what gossip admits and what the data dir keeps")
struct ClusterShapeTests {
    @Test("gossip admits only frames of its own shape; a frame without one is refused, not waved through")
    func admitsOwnShapeOnly() {
        let mine = PlacementSettings()
        #expect(mine.mismatch(mine.shape, sender: "n2") == nil)
        let unshaped = mine.mismatch(Infranaut_V1_ClusterShape(), sender: "n2")
        #expect(unshaped?.contains("sends no cluster shape") == true, "\(unshaped ?? "admitted")")
        var other = mine
        other.shardCount = 64
        let smaller = mine.mismatch(other.shape, sender: "n2")
        #expect(smaller?.contains("--shards 1024") == true, "\(smaller ?? "admitted")")
        var unbounded = mine
        unbounded.replicaLoadFactor = nil
        #expect(mine.mismatch(unbounded.shape, sender: "n2") != nil)
    }

    @Test(
        "the load bound is placed with exactly the thousandths it is stored and gossiped as, on the first start and after a restart"
    )
    func boundRoundedOnce() throws {
        let harness = try Harness()
        var requested = PlacementSettings()
        requested.replicaLoadFactor = 1.0055
        let first = try harness.store.placement(requested: requested)
        #expect(first.replicaLoadFactor == 1.006)
        try harness.crashAndReopen()
        // A later start asks for something else; the stored shape wins.
        let again = try harness.store.placement(requested: PlacementSettings())
        #expect(again == first)
        #expect(again.shape == first.shape)
    }

    @Test("a data dir from before the stored bound keeps the unbounded placement it was created with")
    func oldDataDirStaysUnbounded() throws {
        let harness = try Harness()
        try harness.database.put(StorageKeys.ShardCount.key, StorageKeys.ShardCount.value(64), in: harness.store.meta)
        let shape = try harness.store.placement(requested: PlacementSettings())
        #expect(shape.shardCount == 64)
        #expect(shape.replicaLoadFactor == nil)
    }
}
