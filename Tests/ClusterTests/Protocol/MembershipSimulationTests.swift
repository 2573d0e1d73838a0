import Cluster
import Testing

@Suite("SWIM simulation")
struct MembershipSimulationTests {
    @Test("5 nodes joining through one seed converge to the same view")
    func fiveNodesConverge() {
        let sim = Simulation(nodeCount: 5, seed: 1)
        sim.startAll()
        let converged = sim.run(until: { sim.converged() }, limit: .seconds(10))
        #expect(converged, "views did not converge: \(sim.nodes.map { $0.instance.liveMembers.map(\.id) })")
        // And they stay converged: no false suspicion on a healthy network.
        sim.run(for: .seconds(30))
        #expect(sim.converged())
        #expect(sim.changes.allSatisfy { $0.change.member.status == .alive })
    }

    @Test("a crashed node is declared dead by every live node within the bound", arguments: [5, 20])
    func crashDetectedWithinBound(nodeCount: Int) async {
        let bound = SWIMSettings().detectionBound(memberCount: nodeCount)
        for seed in UInt64(1)...10 {
            await Task.yield()
            let sim = Simulation(nodeCount: nodeCount, seed: seed * 7919)
            sim.startAll()
            #expect(sim.run(until: { sim.converged() }, limit: .seconds(20)))
            sim.run(for: .milliseconds(Int(seed) * 137))
            let victim = Int(seed) % nodeCount
            let crashedAt = sim.now
            sim.crash(victim)
            let survivors = sim.runningIndices
            let detected = sim.run(
                until: {
                    survivors.allSatisfy { sim.nodes[$0].instance.member(sim.nodes[victim].id)?.status == .dead }
                },
                step: .milliseconds(10),
                limit: bound
            )
            #expect(detected, "seed \(seed): not every survivor declared n\(victim) dead within \(bound)")
            #expect(sim.converged(), "seed \(seed): survivors disagree after detection: \(sim.viewDifferences())")
            // Nobody else was declared dead along the way.
            let others = sim.changes.filter {
                $0.change.member.status == .dead && $0.change.member.id != sim.nodes[victim].id
            }
            #expect(others.isEmpty, "seed \(seed): false positives \(others.map(\.change))")
            _ = crashedAt
        }
    }
}

@Suite("SWIM simulation: scale")
struct ScaleSimulationTests {
    @Test("200 nodes: a crash is detected by all within the bound and views stay identical")
    func twoHundredNodes() async {
        let nodeCount = 200
        let sim = Simulation(nodeCount: nodeCount, seed: 200)
        sim.startConverged()
        await sim.runYielding(for: .seconds(5))
        #expect(sim.converged(), "\(sim.viewDifferences())")
        let victim = 123
        let id = sim.nodes[victim].id
        let crashedAt = sim.now
        sim.crash(victim)
        let bound = SWIMSettings().detectionBound(memberCount: nodeCount)
        let detected = await sim.runYielding(
            until: { sim.runningIndices.allSatisfy { sim.nodes[$0].instance.member(id)?.status == .dead } },
            step: .milliseconds(20),
            limit: bound
        )
        #expect(detected)
        print(
            "200 nodes: crash declared dead by all \((sim.now - crashedAt).pretty) after the crash (bound \(bound.pretty))"
        )
        #expect(sim.converged(), "\(sim.viewDifferences())")
        #expect(sim.changes.allSatisfy { $0.change.member.status != .dead || $0.change.member.id == id })
    }

    @Test("50 nodes joining through one seed under 5% loss converge")
    func fiftyNodesJoin() {
        let sim = Simulation(nodeCount: 50, seed: 50)
        sim.loss = 0.05
        sim.startAll(stagger: .milliseconds(10))
        let converged = sim.run(until: { sim.converged() }, step: .milliseconds(100), limit: .seconds(30))
        #expect(converged, "\(sim.viewDifferences())")
        print("50 nodes joined under 5% loss and converged at \(sim.now.pretty)")
    }
}
