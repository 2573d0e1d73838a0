import Monitoring
import Testing

@testable import Drill

@Suite("partition plans")
struct PartitionPlanTests {
    private let five = ["n1", "n2", "n3", "n4", "n5"]

    @Test("split: the first (N-1)/2 nodes apart from the rest, both ways")
    func split() {
        let split = Partition.split(five)
        #expect(split.minority == ["n1", "n2"])
        #expect(split.majority == ["n3", "n4", "n5"])
        #expect(split.cuts(of: "n1") == ["n3", "n4", "n5"])
        #expect(split.cuts(of: "n4") == ["n1", "n2"])
        #expect(split.description == "{n1,n2} | {n3,n4,n5}")
        #expect(Partition.split(["a", "b", "c"]).minority == ["a"])
        #expect(Partition.split(["a", "b", "c", "d", "e", "f"]).minority == ["a", "b"])
    }

    @Test("isolate: one node alone is the minority; the others are the majority side")
    func isolate() {
        let isolated = Partition.isolate("n3", in: five)
        #expect(isolated.minority == ["n3"])
        #expect(isolated.majority == ["n1", "n2", "n4", "n5"])
        #expect(isolated.cuts(of: "n3") == ["n1", "n2", "n4", "n5"])
        #expect(isolated.cuts(of: "n1") == ["n3"])
    }

    @Test("bridge: the sides drop each other, the bridge node drops nobody; with 5 nodes everyone sees a majority")
    func bridge() {
        let bridge = Partition.bridge(five)
        #expect(bridge.cuts(of: "n1") == ["n4", "n5"])
        #expect(bridge.cuts(of: "n5") == ["n1", "n2"])
        #expect(bridge.cuts(of: "n3").isEmpty)
        #expect(bridge.minority.isEmpty)
        #expect(bridge.majority == ["n3"])
        #expect(bridge.cutOff == ["n1", "n2", "n4", "n5"])
        #expect(bridge.description == "{n1,n2} | {n4,n5}, bridged by n3")
        // With 4 nodes the one-node side sees only half: it is a minority.
        let four = Partition.bridge(["a", "b", "c", "d"])
        #expect(four.minority == ["a"])
        #expect(four.majority == ["b", "c", "d"])
    }

    @Test("flap: random splits are seeded, keep a strict majority, and vary")
    func randomSplits() {
        var first = SplitMix64(seed: 7)
        var second = SplitMix64(seed: 7)
        var seen: Set<[String]> = []
        for _ in 0..<50 {
            let split = Partition.randomSplit(five, using: &first)
            #expect(split == Partition.randomSplit(five, using: &second))
            #expect((1...2).contains(split.minority.count), "\(split)")
            #expect(split.majority.count == 5 - split.minority.count)
            for node in split.minority { #expect(Set(split.cuts(of: node)) == Set(split.majority)) }
            seen.insert(split.minority)
        }
        #expect(seen.count > 5, "50 flips gave only \(seen.count) different minorities")
    }
}
