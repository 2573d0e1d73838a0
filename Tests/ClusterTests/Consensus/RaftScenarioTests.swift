import Testing

@testable import Cluster

@Suite("Raft scenarios")
struct RaftScenarioTests {
    static let settings = RaftChaos.settings

    /// Runs until some replica leads, and returns it.
    static func electLeader(_ sim: RaftSimulation) -> Int? {
        for _ in 0..<300 {
            sim.run(for: .milliseconds(10))
            if let leader = sim.leader { return leader }
        }
        return nil
    }

    @Test("a replica answers a vote only after the vote is persisted")
    func voteIsDurableBeforeTheAnswer() {
        var follower = RaftInstance(id: "b", voters: ["a", "b", "c"], settings: Self.settings, seed: 1)
        _ = follower.start(now: .zero)
        let request = RaftMessage(from: "a", term: 1, payload: .requestVote(lastIndex: 0, lastTerm: 0, transfer: false))
        let directives = follower.onMessage(request, now: .seconds(5))
        let persist = directives.firstIndex { if case .persist(let p) = $0 { p.votedFor == "a" } else { false } }
        let answer = directives.firstIndex {
            if case .send(let m, "a") = $0, case .voteResponse(true) = m.payload { true } else { false }
        }
        #expect(persist != nil && answer != nil && persist! < answer!)
    }

    @Test("a follower acknowledges an append only after the entries are persisted")
    func appendIsDurableBeforeTheAcknowledgement() {
        var follower = RaftInstance(id: "b", voters: ["a", "b", "c"], settings: Self.settings, seed: 1)
        _ = follower.start(now: .zero)
        let entry = RaftEntry(term: 1, index: 1, body: .noop)
        let append = RaftMessage(
            from: "a", term: 1, payload: .append(prevIndex: 0, prevTerm: 0, entries: [entry], commit: 0))
        let directives = follower.onMessage(append, now: .milliseconds(1))
        let persist = directives.firstIndex { if case .persist(let p) = $0 { p.entries == [entry] } else { false } }
        let answer = directives.firstIndex {
            if case .send(let m, "a") = $0, case .appendResponse(true, 1, _) = m.payload { true } else { false }
        }
        #expect(persist != nil && answer != nil && persist! < answer!)
    }

    @Test("an isolated follower does not disrupt the group when it returns (pre-vote)")
    func returningFollowerDoesNotDisrupt() throws {
        let sim = RaftSimulation(voters: 5, spares: 0, seed: 11, settings: Self.settings)
        let leader = try #require(Self.electLeader(sim))
        let term = sim.replicas[leader].instance.term
        let victim = (leader + 1) % 5
        sim.split([victim])
        sim.run(for: .seconds(5))
        #expect(sim.replicas[victim].instance.term == term, "the cut-off replica raised its term")
        sim.heal()
        sim.run(for: .seconds(2))
        #expect(sim.leader == leader)
        #expect(sim.replicas[leader].instance.term == term)
        #expect(sim.violation == nil)
    }

    @Test("a leader cut off from the majority steps down within two election timeouts (check-quorum)")
    func isolatedLeaderStepsDown() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 5, settings: Self.settings)
        let leader = try #require(Self.electLeader(sim))
        sim.split([leader])
        sim.run(for: Self.settings.electionTimeout * 2)
        #expect(sim.replicas[leader].instance.role != .leader)
        // The majority elected someone else, and the old leader cannot commit anything.
        #expect(sim.leader != nil && sim.leader != leader)
        sim.heal()
        sim.run(for: .seconds(1))
        #expect(sim.violation == nil)
    }

    @Test("leadership transfer hands over to the chosen voter")
    func transfer() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 3, settings: Self.settings)
        let leader = try #require(Self.electLeader(sim))
        sim.propose(42, at: leader)
        sim.run(for: .milliseconds(200))
        let target = (leader + 2) % 3
        sim.transferLeadership(from: leader, to: sim.replicas[target].id)
        sim.run(for: .milliseconds(300))
        #expect(sim.leader == target)
        #expect(sim.violation == nil)
    }

    @Test("moving a replica: add the new voter, remove the old one, keep committing")
    func moveReplica() throws {
        let sim = RaftSimulation(voters: 3, spares: 1, seed: 9, settings: Self.settings)
        var leader = try #require(Self.electLeader(sim))
        for value in UInt64(1)...20 { sim.propose(value, at: leader) }
        sim.run(for: .milliseconds(300))
        let spare = sim.replicas[3].id
        let old = sim.replicas[leader].id  // move the leader's own replica away
        sim.proposeConfiguration(sim.replicas[leader].instance.voters.union([spare]), at: leader)
        sim.run(for: .milliseconds(300))
        sim.proposeConfiguration(sim.replicas[leader].instance.voters.subtracting([old]), at: leader)
        sim.run(for: .seconds(2))
        leader = try #require(sim.leader)
        #expect(sim.replicas[leader].id != old)
        #expect(sim.replicas[leader].instance.voters == Set(["r0", "r1", "r2", "r3"]).subtracting([old]))
        #expect(sim.propose(99, at: leader))
        sim.run(for: .milliseconds(300))
        #expect(sim.checker.acknowledged.contains { $0.value == 99 })
        #expect(sim.replicas[3].instance.lastIndex == sim.replicas[leader].instance.lastIndex)
        #expect(sim.violation == nil)
    }
}

@Suite("Raft under clock jumps and drift")
struct RaftClockTests {
    static let settings = RaftChaos.settings

    @Test("a follower whose clock jumps forward cannot depose a healthy leader (pre-vote)")
    func followerClockJump() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 4, settings: Self.settings)
        let leader = try #require(RaftScenarioTests.electLeader(sim))
        let term = sim.replicas[leader].instance.term
        let follower = (leader + 1) % 3
        for _ in 0..<5 {
            sim.jumpClock(follower, by: Self.settings.electionTimeout * 3)
            sim.run(for: .milliseconds(100))
        }
        // Its timer fired each time, but the others still heard from the leader and refused it.
        #expect(sim.replicas[follower].instance.term == term)
        #expect(sim.leader == leader && sim.replicas[leader].instance.term == term)
        #expect(sim.violation == nil)
    }

    @Test("a leader whose clock jumps forward steps down (check-quorum); the group elects another and loses nothing")
    func leaderClockJump() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 6, settings: Self.settings)
        let leader = try #require(RaftScenarioTests.electLeader(sim))
        for value in UInt64(1)...5 { sim.propose(value, at: leader) }
        sim.run(for: .milliseconds(200))
        // Jump past the quorum check by more than an election timeout: on its clock, nobody
        // answered for that long, so it stops leading at its next tick.
        sim.jumpClock(leader, by: Self.settings.electionTimeout * 3)
        sim.run(for: .milliseconds(10))
        #expect(sim.replicas[leader].instance.role != .leader)
        sim.run(for: .seconds(2))
        let next = try #require(sim.leader)
        #expect(sim.propose(6, at: next))
        sim.run(for: .milliseconds(300))
        #expect(Set(sim.checker.acknowledged.map(\.value)).isSuperset(of: [1, 2, 3, 4, 5, 6]))
        #expect(sim.violation == nil)
    }

    @Test("replicas whose clocks run at half and twice real speed keep a leader and commit")
    func clockDrift() throws {
        let sim = RaftSimulation(voters: 5, spares: 0, seed: 12, settings: Self.settings)
        let rates = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 1)]
        for (index, rate) in rates.enumerated() { sim.setClockRate(index, num: rate.0, den: rate.1) }
        let leader = try #require(RaftScenarioTests.electLeader(sim))
        for value in UInt64(1)...20 {
            if let current = sim.leader { sim.propose(value, at: current) }
            sim.run(for: .milliseconds(100))
        }
        #expect(sim.checker.acknowledged.count >= 15, "leader r\(leader) then \(sim.leader.map { "r\($0)" } ?? "none")")
        #expect(sim.violation == nil)
    }
}
