@testable import Cluster

/// One seeded chaos run: 3–7 voters and a spare, client proposals throughout, and random faults
/// (loss, duplication, delay and reordering, split/isolate/bridge partitions that keep changing,
/// crashes with the write in flight kept, lost or torn, restarts, membership changes, leadership
/// transfers). Then every fault heals and a leader must commit a new proposal within
/// `livenessBound`.
struct RaftChaos {
    static let settings = RaftSettings(electionTimeout: .milliseconds(300), heartbeatInterval: .milliseconds(50))
    static let livenessBound = settings.electionTimeout * 20

    struct Outcome {
        var violation: String?
        var proposals: Int
        var acknowledged: Int
        var steps: Int
        var recovery: Duration?
    }

    static func run(
        seed: UInt64, chaos: Duration = .seconds(3), brokenRule: RaftInstance.BrokenRule? = nil,
        trace: ((String) -> Void)? = nil
    ) -> Outcome {
        var random = SimRandom(seed: seed ^ 0xC4A0_5EED)
        let voters = 3 + Int(seed % 5)
        let sim = RaftSimulation(voters: voters, spares: 1, seed: seed, settings: settings, brokenRule: brokenRule)
        sim.trace = trace
        sim.loss = [0, 0.05, 0.2][Int.random(in: 0..<3, using: &random)]
        sim.duplication = [0, 0.05, 0.1][Int.random(in: 0..<3, using: &random)]
        sim.maxDelay = .milliseconds([10, 30, 100][Int.random(in: 0..<3, using: &random)])
        let count = sim.replicas.count
        var value: UInt64 = 0
        while sim.now < chaos && sim.violation == nil {
            sim.run(for: .milliseconds(Int.random(in: 5...40, using: &random)))
            let running = sim.replicas.indices.filter { sim.replicas[$0].running }
            let crashed = sim.replicas.indices.filter { !sim.replicas[$0].running }
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<55:
                value += 1
                let target = sim.leader ?? running.randomElement(using: &random)
                if let target { sim.propose(value, at: target) }
            case 55..<62:
                var side = Set(sim.replicas.indices.filter { _ in Bool.random(using: &random) })
                switch Int.random(in: 0..<3, using: &random) {
                case 0: sim.split(side)
                case 1: sim.split([Int.random(in: 0..<count, using: &random)])
                default:
                    let bridge = Int.random(in: 0..<count, using: &random)
                    side.remove(bridge)
                    sim.split(side, bridge: bridge)
                }
            case 62..<67:
                sim.heal()
            case 67..<73:
                if let victim = running.randomElement(using: &random) {
                    sim.crash(victim, mode: RaftSimulation.CrashMode.allCases.randomElement(using: &random)!)
                }
            case 73..<81:
                if let back = crashed.randomElement(using: &random) { sim.restart(back) }
            case 81..<88:
                guard let leader = sim.leader else { break }
                let current = sim.replicas[leader].instance.voters
                let outside = sim.replicas.map(\.id).filter { !current.contains($0) }
                if current.count < 7, let joiner = outside.randomElement(using: &random),
                    current.count <= 3 || Bool.random(using: &random)
                {
                    sim.proposeConfiguration(current.union([joiner]), at: leader)
                } else if current.count > 3, let leaving = current.sorted().randomElement(using: &random) {
                    sim.proposeConfiguration(current.subtracting([leaving]), at: leader)
                }
            case 88..<92:
                guard let leader = sim.leader else { break }
                if let target = sim.replicas[leader].instance.voters.sorted().randomElement(using: &random) {
                    sim.transferLeadership(from: leader, to: target)
                }
            default:
                break
            }
        }
        // Heal everything, then a leader must commit a fresh proposal within the bound.
        sim.heal()
        sim.loss = 0
        sim.duplication = 0
        for index in sim.replicas.indices { sim.restart(index) }
        let healedAt = sim.now
        var recovery: Duration?
        let probe: UInt64 = 1 << 40
        var lastTry = Duration.zero - .seconds(1)
        while sim.violation == nil && sim.now - healedAt <= livenessBound {
            sim.run(for: .milliseconds(10))
            if sim.checker.acknowledged.contains(where: { $0.value == probe }) {
                recovery = sim.now - healedAt
                break
            }
            if let leader = sim.leader, sim.now - lastTry >= .milliseconds(200) {
                lastTry = sim.now
                sim.propose(probe, at: leader)
            }
        }
        var checker = sim.checker
        if let leader = sim.leader, recovery != nil { checker.checkAcknowledged(in: sim.replicas[leader].instance) }
        let violation =
            checker.violation
            ?? (recovery == nil ? "liveness: no proposal committed within \(livenessBound) of healing" : nil)
        return Outcome(
            violation: violation, proposals: checker.proposals, acknowledged: checker.acknowledged.count,
            steps: sim.steps, recovery: recovery)
    }
}
