import Cluster
import Testing

/// Faults beyond a clean crash: pauses, restarts, partitions, leaves, message loss.
@Suite("SWIM simulation: faults")
struct FailureSimulationTests {
    /// Starts `nodeCount` nodes and waits until they agree.
    private func formedCluster(_ nodeCount: Int, seed: UInt64) -> Simulation {
        let sim = Simulation(nodeCount: nodeCount, seed: seed)
        sim.startAll()
        let formed = sim.run(until: { sim.converged() }, limit: .seconds(30))
        #expect(formed, "cluster of \(nodeCount) did not form: \(sim.viewDifferences())")
        return sim
    }

    @Test("median time until all survivors declare a crashed node dead is under 3 s", arguments: [3, 5])
    func detectionMedian(nodeCount: Int) async {
        var times: [Duration] = []
        for seed in UInt64(1)...30 {
            await Task.yield()
            let sim = formedCluster(nodeCount, seed: seed * 31)
            sim.run(for: .milliseconds(Int(seed) * 97 % 1000 + 500))
            let victim = Int(seed) % nodeCount
            let crashedAt = sim.now
            sim.crash(victim)
            let survivors = sim.runningIndices
            let detected = sim.run(
                until: {
                    survivors.allSatisfy { sim.nodes[$0].instance.member(sim.nodes[victim].id)?.status == .dead }
                },
                step: .milliseconds(5),
                limit: .seconds(30)
            )
            #expect(detected)
            times.append(sim.now - crashedAt)
        }
        print(
            "detection (\(nodeCount) nodes, 30 crashes): median \(times.median.pretty), p90 \(times.percentile(0.9).pretty), max \(times.max()!.pretty)"
        )
        #expect(times.median < .seconds(3))
        #expect(times.max()! <= SWIMSettings().detectionBound(memberCount: nodeCount))
    }

    @Test("a suspicion expects no more confirmations than the other members can give")
    func confirmationsCappedByClusterSize() {
        let settings = SWIMSettings()
        let low = settings.minimumSuspicionTimeout(memberCount: 3)
        let high = settings.maximumSuspicionTimeout(memberCount: 3)
        // 3 nodes: the other survivor is the only possible confirmation, and it is enough.
        #expect(settings.suspicionTimeout(memberCount: 3, confirmations: 1) == low)
        #expect(settings.suspicionTimeout(memberCount: 3, confirmations: 0) == high)
        // 2 nodes: nobody can confirm, so the suspicion runs its full length.
        #expect(settings.suspicionTimeout(memberCount: 2, confirmations: 0) == high)
        // 5 nodes: one confirmation is not all there can be; three are.
        #expect(settings.suspicionTimeout(memberCount: 5, confirmations: 1) > low)
        #expect(settings.suspicionTimeout(memberCount: 5, confirmations: 3) == low)
    }

    @Test("a node paused for less than the minimum suspicion timeout is never declared dead", arguments: [3, 5])
    func shortPauseIsNotDeath(nodeCount: Int) async {
        let settings = SWIMSettings()
        let pause = settings.minimumSuspicionTimeout(memberCount: nodeCount)
        for seed in UInt64(1)...20 {
            await Task.yield()
            let sim = formedCluster(nodeCount, seed: seed * 101)
            sim.run(for: .milliseconds(Int(seed) * 53))
            let victim = Int(seed) % nodeCount
            let pausedAt = sim.now
            sim.pause(victim)
            sim.run(for: pause)
            sim.resume(victim)
            sim.run(for: .seconds(15))
            let deaths = sim.changes(about: sim.nodes[victim].id, to: .dead, since: pausedAt)
            #expect(deaths.isEmpty, "seed \(seed): paused n\(victim) declared dead by \(deaths.map(\.observer))")
            #expect(sim.converged(), "seed \(seed): \(sim.viewDifferences())")
        }
    }

    @Test("a node paused far beyond the bound is declared dead, then refutes and comes back")
    func longPauseIsDeathThenRefutation() {
        let sim = formedCluster(5, seed: 77)
        let victim = 3
        let id = sim.nodes[victim].id
        let before = sim.nodes[victim].instance.myself.incarnation
        let pausedAt = sim.now
        sim.pause(victim)
        sim.run(for: SWIMSettings().detectionBound(memberCount: 5))
        for observer in sim.runningIndices {
            #expect(sim.nodes[observer].instance.member(id)?.status == .dead)
        }
        #expect(sim.changes(about: id, to: .dead, since: pausedAt).count == 4)
        sim.resume(victim)
        let back = sim.run(until: { sim.converged() }, limit: .seconds(30))
        #expect(back, "\(sim.viewDifferences())")
        #expect(sim.nodes[victim].instance.myself.incarnation > before)
    }

    @Test("a crashed and restarted node rejoins with a higher incarnation")
    func restartRejoinsWithHigherIncarnation() {
        let sim = formedCluster(5, seed: 5)
        let victim = 2
        let id = sim.nodes[victim].id
        sim.crash(victim)
        let dead = sim.run(
            until: { sim.runningIndices.allSatisfy { sim.nodes[$0].instance.member(id)?.status == .dead } },
            limit: .seconds(20)
        )
        #expect(dead)
        let deadIncarnation = sim.nodes[0].instance.member(id)!.incarnation
        sim.restart(victim, seedIndex: 0)
        let rejoined = sim.run(until: { sim.converged() }, limit: .seconds(20))
        #expect(rejoined, "\(sim.viewDifferences())")
        for observer in sim.runningIndices {
            let seen = sim.nodes[observer].instance.member(id)
            #expect(seen?.status == .alive)
            #expect((seen?.incarnation ?? 0) > deadIncarnation)
        }
    }

    @Test("a 3|7 partition: the minority loses its majority, and the views heal through push-pull")
    func partitionHeals() {
        let sim = formedCluster(10, seed: 2024)
        let minority = Array(0..<3)
        let majority = Array(3..<10)
        sim.partition([minority, majority])
        sim.run(for: .seconds(30))
        // Each side has declared the other dead and agrees with itself.
        #expect(sim.converged(among: minority), "\(sim.viewDifferences())")
        #expect(sim.converged(among: majority), "\(sim.viewDifferences())")
        for observer in minority {
            #expect(sim.nodes[observer].instance.liveMembers.count == 3)
            #expect(!sim.nodes[observer].instance.seesMajority)
        }
        for observer in majority {
            #expect(sim.nodes[observer].instance.liveMembers.count == 7)
            #expect(sim.nodes[observer].instance.seesMajority)
        }
        sim.heal()
        let healedAt = sim.now
        let healed = sim.run(until: { sim.converged() }, limit: sim.settings.pushPullInterval * 3)
        #expect(healed, "\(sim.viewDifferences())")
        #expect(sim.nodes.allSatisfy { $0.instance.seesMajority })
        print("partition 3|7 for 30 s healed in \((sim.now - healedAt).pretty)")
    }

    @Test("the minority side still sees no majority after the other side's tombstones expire")
    func minorityOutlivesTombstones() {
        let sim = formedCluster(5, seed: 77)
        let minority = Array(0..<2)
        sim.partition([minority, Array(2..<5)])
        sim.run(for: sim.settings.tombstoneTTL + .seconds(30))
        for observer in minority {
            // The dead members are forgotten as tombstones, but still count against the majority.
            #expect(sim.nodes[observer].instance.members.count == 2)
            #expect(!sim.nodes[observer].instance.seesMajority)
        }
    }

    @Test("a graceful leave is seen as left by every member within a second")
    func gracefulLeave() {
        let sim = formedCluster(8, seed: 9)
        let leaver = 4
        let id = sim.nodes[leaver].id
        let leftAt = sim.now
        sim.leave(leaver)
        sim.run(for: .seconds(1))
        for observer in sim.runningIndices where observer != leaver {
            #expect(sim.nodes[observer].instance.member(id)?.status == .left)
        }
        sim.crash(leaver)
        sim.run(for: .seconds(10))
        #expect(sim.changes(about: id, to: .dead, since: leftAt).isEmpty)
        #expect(sim.changes(about: id, to: .suspect, since: leftAt).isEmpty)
    }

    @Test("with 10% message loss and jittery delays, no live node is declared dead", arguments: [UInt64(4242), 7, 99])
    func lossyNetworkNoFalseDeaths(seed: UInt64) {
        let sim = Simulation(nodeCount: 20, seed: seed)
        sim.loss = 0.10
        sim.maxDelay = .milliseconds(40)
        sim.startAll()
        let formed = sim.run(until: { sim.converged() }, limit: .seconds(30))
        #expect(formed)
        let start = sim.now
        sim.run(for: .seconds(120))
        let falseDeaths = sim.changes.filter { $0.time >= start && $0.change.member.status == .dead }
        let suspicions = sim.changes.filter { $0.time >= start && $0.change.member.status == .suspect }
        print(
            "10% loss, 20 nodes, 120 s, seed \(seed): \(suspicions.count) suspicion events, \(falseDeaths.count) false deaths"
        )
        // Suspicions do happen at this loss rate; they must all be refuted in time.
        #expect(!suspicions.isEmpty)
        #expect(falseDeaths.isEmpty)
        #expect(sim.run(until: { sim.converged() }, limit: .seconds(10)))
    }
}
