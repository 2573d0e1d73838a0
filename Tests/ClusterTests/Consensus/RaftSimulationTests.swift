import Testing

@testable import Cluster

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Raft simulation")
struct RaftSimulationTests {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    static let seedCount = environment("RAFT_SEEDS").flatMap { Int($0) } ?? 2000
    /// The seeds are dealt to this many test cases, which Swift Testing runs in parallel.
    static let shards = 4

    @Test(
        "chaos: invariants hold after every step and a leader commits after healing, for many seeds",
        arguments: 0..<shards)
    func chaosSeeds(shard: Int) async {
        var acknowledged = 0
        var snapshots = 0
        var slowest = Duration.zero
        var runs = 0
        for seed in stride(from: UInt64(1 + shard), through: UInt64(Self.seedCount), by: Self.shards) {
            // Seeds are CPU-bound: let the suites that wait on sockets and timers run between them.
            await Task.yield()
            let outcome = RaftChaos.run(seed: seed)
            if let violation = outcome.violation {
                Issue.record(
                    "seed \(seed): \(violation); replay with RAFT_SEED=\(seed) swift test --filter RaftSimulationTests")
                return
            }
            runs += 1
            acknowledged += outcome.acknowledged
            snapshots += outcome.snapshotsInstalled
            slowest = max(slowest, outcome.recovery ?? .zero)
        }
        // The runs did real work: proposals were acknowledged despite the faults, and followers
        // caught up through snapshots.
        #expect(acknowledged > runs * 5)
        #expect(snapshots > runs / 10)
        #expect(slowest <= RaftChaos.livenessBound)
    }

    @Test("replay one seed with its trace (RAFT_SEED=n)")
    func replay() {
        let seed = Self.environment("RAFT_SEED").flatMap { UInt64($0) } ?? 7
        var lines: [String] = []
        let outcome = RaftChaos.run(seed: seed) { lines.append($0) }
        if outcome.violation != nil || Self.environment("RAFT_SEED") != nil {
            print(lines.suffix(400).joined(separator: "\n"))
        }
        #expect(outcome.violation == nil, "seed \(seed): \(outcome.violation ?? "")")
        #expect(!lines.isEmpty)
    }
}
