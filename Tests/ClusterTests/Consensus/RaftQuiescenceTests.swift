import Testing

@testable import Cluster

/// Quiet groups (docs/consensus.md, "Quiescence") in the simulation: nothing here may leave a
/// replica without a leader while the group's leader is alive and reachable.
@Suite("Raft quiescence")
struct RaftQuiescenceTests {
    static var settings: RaftSettings {
        var settings = RaftChaos.settings
        settings.quiesceWhenIdle = true
        return settings
    }

    /// A falsely suspected leader: the shell wakes a follower of a quiet group, which forgets its
    /// leader and asks for pre-votes. The other follower wakes on the request but still trusts the
    /// leader and refuses; the leader, woken too, goes quiet again at its next tick and sends only
    /// `quiesce`. The woken follower must take that as its leader's word (one leader per term) and
    /// follow it again, not stay leaderless until a write comes or a lucky timer forces an election
    /// (a leave test once waited 90 s for leaders on real nodes).
    @Test("a follower woken by a false suspicion follows its quiet leader again")
    func wokenFollowerFollowsItsQuietLeader() throws {
        for seed: UInt64 in 1...8 {
            let sim = RaftSimulation(voters: 3, spares: 0, seed: seed, settings: Self.settings)
            let leader = try #require(RaftScenarioTests.electLeader(sim))
            sim.run(for: .seconds(2))
            let quiet = sim.replicas.allSatisfy { $0.instance.isQuiescent }
            try #require(quiet, "seed \(seed): the group never went quiet")
            let term = sim.replicas[leader].instance.term
            let woken = (leader + 1) % 3
            sim.execute(woken, sim.replicas[woken].instance.wake(now: sim.localNow(woken)))
            #expect(sim.replicas[woken].instance.leader == nil)
            // Within a few election timeouts it follows the same leader at the same term: a false
            // suspicion neither leaves it leaderless nor costs the group an election.
            sim.run(for: Self.settings.electionTimeout * 4)
            let leaderID = sim.replicas[leader].id
            let after = sim.replicas[woken].instance
            #expect(
                after.leader == leaderID && after.term == term,
                "seed \(seed): the woken follower's leader is \(after.leader?.rawValue ?? "none") at term \(after.term), not \(leaderID) at \(term)"
            )
            let led = sim.replicas.allSatisfy { $0.instance.leader == leaderID }
            #expect(led, "seed \(seed)")
            #expect(sim.violation == nil)
        }
    }
}
