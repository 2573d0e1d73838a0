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

    static let seedCount = environment("RAFT_SEEDS").flatMap { Int($0) } ?? 400

    @Test("chaos: invariants hold after every step and a leader commits after healing, for many seeds")
    func chaosSeeds() {
        var acknowledged = 0
        var slowest = Duration.zero
        for seed in UInt64(1)...UInt64(Self.seedCount) {
            let outcome = RaftChaos.run(seed: seed)
            if let violation = outcome.violation {
                Issue.record(
                    "seed \(seed): \(violation); replay with RAFT_SEED=\(seed) swift test --filter RaftSimulationTests")
                return
            }
            acknowledged += outcome.acknowledged
            slowest = max(slowest, outcome.recovery ?? .zero)
        }
        // The runs did real work: proposals were acknowledged despite the faults.
        #expect(acknowledged > Self.seedCount * 5)
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

    @Test("the checker catches commitment on a minority within a few seeds")
    func catchesMinorityCommit() {
        let caught = (UInt64(1)...10).first { RaftChaos.run(seed: $0, brokenRule: .commitOnMinority).violation != nil }
        #expect(caught != nil)
    }
}
