import Testing

@testable import Cluster

/// The checker must catch a leader that breaks the commitment rule. `commitEarlierTerms` (count
/// replicas for an entry of an earlier term, ignoring Raft §5.4.2) loses a committed entry only
/// in the sequence of the Raft paper's Figure 8; `figure8` scripts it, and the chaos adversary
/// must find it at random.
@Suite("Raft commitment rules")
struct RaftCommitRuleTests {
    struct Figure8 {
        var violation: String?
        /// The re-elected first leader committed its old-term entry at index 2.
        var committedOldEntry: Bool
        /// The term of the entry at index 2 in the final leader's log.
        var finalTermAtTwo: RaftTerm?
        /// The term of the entry the second leader wrote at index 2.
        var secondLeaderTerm: RaftTerm
        /// The simulation's trace, printed when a test fails.
        var trace: [String]
    }

    /// Figure 8 on five replicas. (a) S1 leads and replicates an entry at index 2 to S2 only, then
    /// crashes. (b) S5 is elected by S3, S4, S5 and writes its own index 2, reaching nobody, then
    /// crashes. (c) S1 returns and is elected again (by S2 and S3), appends its no-op at index 3
    /// and copies its index 2 to S3 (one entry per append): index 2 is on a majority, index 3 is
    /// not. S1 and S2 crash at that moment. (d) S5 returns and is elected by S3 and S4, whose last
    /// term is older than its own, and overwrites index 2 with its own entry. Index 2 was never
    /// committed under the correct rule; with `commitEarlierTerms` S1 committed it in (c).
    static func figure8(brokenRule: RaftInstance.BrokenRule?) throws -> Figure8 {
        var settings = RaftChaos.settings
        settings.maxEntriesPerAppend = 1
        let sim = RaftSimulation(voters: 5, spares: 0, seed: 8, settings: settings, brokenRule: brokenRule)
        sim.minDelay = .milliseconds(3)
        sim.maxDelay = .milliseconds(3)
        sim.diskLatency = 2...2
        var trace: [String] = []
        sim.trace = { trace.append($0) }
        let s1 = try #require(RaftScenarioTests.electLeader(sim))
        sim.run(for: .milliseconds(200))
        // (a)
        let s2 = (s1 + 1) % 5
        let others = Set(sim.replicas.indices).subtracting([s1, s2])
        sim.split([s1, s2])
        try #require(sim.propose(1, at: s1))
        sim.run(for: .milliseconds(50))
        let firstTerm = sim.replicas[s1].instance.term
        try #require(sim.replicas[s2].instance.entry(at: 2)?.term == firstTerm)
        sim.crash(s1, mode: .inFlightWritten)
        // (b): crash S5 the moment it leads, with its no-op written but not sent.
        sim.run(for: .seconds(3)) { sim.leader.map(others.contains) ?? false }
        let s5 = try #require(sim.leader)
        sim.crash(s5, mode: .inFlightWritten)
        let secondTerm = try #require(sim.replicas[s5].disk.durable.log.last { $0.index == 2 }?.term)
        try #require(secondTerm > firstTerm)
        // (c): S1 or S2 leads again (only they hold index 2); stop when S3 or S4 holds index 2.
        sim.heal()
        sim.restart(s1)
        let s34 = others.subtracting([s5])
        sim.run(for: .seconds(3)) { sim.leader == s1 || sim.leader == s2 }
        let again = try #require(sim.leader)
        let partner = again == s1 ? s2 : s1
        sim.run(for: .seconds(1)) {
            s34.contains { sim.replicas[again].instance.progress[sim.replicas[$0].id]?.match ?? 0 >= 2 }
        }
        try #require(sim.replicas[again].instance.role == .leader)
        try #require(sim.replicas[again].instance.lastIndex == 3)
        let committedOldEntry = sim.replicas[again].instance.commitIndex >= 2
        sim.split([again])
        sim.crash(again, mode: .inFlightWritten)
        sim.crash(partner, mode: .inFlightWritten)
        sim.run(for: .milliseconds(20))  // the partition drops what S1 still had in flight
        // (d)
        sim.heal()
        sim.restart(s5)
        sim.run(for: .seconds(3)) { sim.leader == s5 }
        sim.run(for: .milliseconds(300))
        return Figure8(
            violation: sim.violation, committedOldEntry: committedOldEntry,
            finalTermAtTwo: sim.leader.flatMap { sim.replicas[$0].instance.entry(at: 2)?.term },
            secondLeaderTerm: secondTerm, trace: trace)
    }

    @Test("Figure 8: counting replicas for an old-term entry loses a committed entry, and the checker says so")
    func figure8BrokenRuleIsCaught() throws {
        let run = try Self.figure8(brokenRule: .commitEarlierTerms)
        #expect(run.committedOldEntry)
        #expect(run.violation?.hasPrefix("leader completeness") == true, "\(run.violation ?? "no violation")")
        if !run.committedOldEntry || run.violation == nil { print(run.trace.joined(separator: "\n")) }
    }

    @Test("Figure 8 with the correct rule: the old-term entry is never committed, so overwriting it is safe")
    func figure8CorrectRuleIsSafe() throws {
        let run = try Self.figure8(brokenRule: nil)
        #expect(!run.committedOldEntry)
        #expect(run.violation == nil, "\(run.violation ?? "")")
        #expect(run.finalTermAtTwo == run.secondLeaderTerm)
        if run.violation != nil || run.finalTermAtTwo != run.secondLeaderTerm {
            print(run.trace.joined(separator: "\n"))
        }
    }
}

extension RaftCommitRuleTests {
    /// Where the seed searches start; each search runs seeds upward from its start.
    static let searchStarts: [UInt64] = [1, 100_001, 200_001, 300_001, 400_001]
    static let searchLimit = RaftSimulationTests.environment("RAFT_SEARCH_LIMIT").flatMap { Int($0) } ?? 40

    /// How many consecutive seeds from `start` the chaos needs to catch `rule` (nil: not within `limit`).
    static func seedsToCatch(_ rule: RaftInstance.BrokenRule, from start: UInt64, limit: Int) -> Int? {
        (0..<limit).first { RaftChaos.run(seed: start + UInt64($0), brokenRule: rule).violation != nil }.map { $0 + 1 }
    }

    @Test("random chaos catches commitment of earlier terms by count (Figure 8) within a modest number of seeds")
    func chaosCatchesEarlierTermCommit() {
        let needed = Self.searchStarts.map { Self.seedsToCatch(.commitEarlierTerms, from: $0, limit: Self.searchLimit) }
        let found = needed.compactMap { $0 }.sorted()
        print(
            "commitEarlierTerms caught after \(needed.map { $0.map(String.init) ?? "-" }) seeds; median \(found.isEmpty ? 0 : found[found.count / 2])"
        )
        #expect(found.count == needed.count, "not caught within \(Self.searchLimit) seeds from some start")
    }

    @Test("random chaos catches commitment on a minority within a few seeds, from every start")
    func chaosCatchesMinorityCommit() {
        let needed = Self.searchStarts.map { Self.seedsToCatch(.commitOnMinority, from: $0, limit: 20) }
        print("commitOnMinority caught after \(needed.map { $0.map(String.init) ?? "-" }) seeds")
        #expect(needed.allSatisfy { $0 != nil }, "not caught within 20 seeds from some start")
    }
}
