@testable import Cluster

/// One seeded chaos run: 3–7 voters (5 most often) and a spare, client proposals throughout, and
/// random faults (loss, duplication, delay and reordering, split/isolate/bridge partitions that
/// keep changing, crashes with the write in flight kept, lost or torn, restarts, membership
/// changes, leadership transfers, clock jumps and drift, compaction at random points). Then every
/// fault heals and a leader must commit a new proposal within `livenessBound`.
///
/// Three seeds in four also run a `RaftAdversary`, which churns leaders around partially
/// replicated entries (the Raft paper's Figure 8) often enough to catch a leader that commits
/// entries of earlier terms by counting replicas.
struct RaftChaos {
    static let settings = RaftSettings(electionTimeout: .milliseconds(300), heartbeatInterval: .milliseconds(50))
    static let fastSettings = RaftSettings(electionTimeout: .milliseconds(150), heartbeatInterval: .milliseconds(25))
    /// After healing, a leader must commit within 20 (slow) election timeouts.
    static let livenessBound = settings.electionTimeout * 20

    struct Outcome {
        var violation: String?
        var proposals: Int
        var acknowledged: Int
        var snapshotsInstalled: Int
        var steps: Int
        var recovery: Duration?
    }

    static func run(
        seed: UInt64, chaos: Duration = .seconds(3), brokenRule: RaftInstance.BrokenRule? = nil,
        trace: ((String) -> Void)? = nil
    ) -> Outcome {
        var random = SimRandom(seed: seed ^ 0xC4A0_5EED)
        let voters = [3, 5, 3, 4, 5, 6, 7][Int(seed % 7)]
        var adversary = RaftAdversary()
        if Int.random(in: 0..<4, using: &random) > 0 {
            adversary.isolateNewLeader = [0.1, 0.3][Int.random(in: 0..<2, using: &random)]
            adversary.crashOnFirstCommit = [0.1, 0.3][Int.random(in: 0..<2, using: &random)]
            adversary.startPlan = [0.05, 0.2][Int.random(in: 0..<2, using: &random)]
        }
        // Two in three of the adversary's runs use timeouts twice as short (and short delays, which
        // they need), so that more leaders come and go in the same time.
        let fast = adversary.enabled && Int.random(in: 0..<3, using: &random) > 0
        var settings = fast ? Self.fastSettings : Self.settings
        settings.maxEntriesPerAppend = [1, 1, 2, 64][Int.random(in: 0..<4, using: &random)]
        let sim = RaftSimulation(voters: voters, spares: 1, seed: seed, settings: settings, brokenRule: brokenRule)
        sim.trace = trace
        sim.loss = [0, 0.05, 0.2][Int.random(in: 0..<3, using: &random)]
        sim.duplication = [0, 0.05, 0.1][Int.random(in: 0..<3, using: &random)]
        sim.maxDelay = .milliseconds([10, 30, 100][Int.random(in: 0..<(fast ? 2 : 3), using: &random)])
        sim.compactionRate = [0, 0.05, 0.3][Int.random(in: 0..<3, using: &random)]
        sim.compactionKeep = [0, 4, 20][Int.random(in: 0..<3, using: &random)]
        // Replicas start with unrelated clocks.
        for index in sim.replicas.indices {
            sim.jumpClock(index, by: .milliseconds(Int.random(in: 0...5000, using: &random)))
        }
        trace?(
            "seed \(seed): \(voters) voters, timeout \(settings.electionTimeout), \(settings.maxEntriesPerAppend) entries per append, adversary \(adversary.isolateNewLeader)/\(adversary.crashOnFirstCommit)"
        )
        var value: UInt64 = 0
        while sim.now < chaos && sim.violation == nil {
            adversary.run(sim, for: .milliseconds(Int.random(in: 5...40, using: &random)), &random)
            act(on: sim, value: &value, settings: settings, adversary: &adversary, &random)
        }
        return heal(sim, trace: trace)
    }

    /// Crashes a replica, which comes back by itself after 20–600 ms, or (one time in five) stays
    /// down until a random restart.
    private static func crash(
        _ victim: Int, in sim: RaftSimulation, mode: RaftSimulation.CrashMode? = nil, _ random: inout SimRandom
    ) {
        let mode = mode ?? RaftSimulation.CrashMode.allCases.randomElement(using: &random)!
        let downtime = Duration.milliseconds(Int.random(in: 20...600, using: &random))
        sim.crash(victim, mode: mode, restartAfter: Int.random(in: 0..<5, using: &random) == 0 ? nil : downtime)
    }

    /// One random action between two slices.
    private static func act(
        on sim: RaftSimulation, value: inout UInt64, settings: RaftSettings, adversary: inout RaftAdversary,
        _ random: inout SimRandom
    ) {
        let count = sim.replicas.count
        let running = sim.replicas.indices.filter { sim.replicas[$0].running }
        let crashed = sim.replicas.indices.filter { !sim.replicas[$0].running }
        var roll = Int.random(in: 0..<100, using: &random)
        // While the adversary's plan runs it owns the faults, so that its leader changes play out;
        // otherwise most random partitions and crashes give way to its targeted ones.
        if adversary.enabled, roll >= 48,
            adversary.plan != .idle || (48..<63).contains(roll) && Int.random(in: 0..<4, using: &random) > 0
        {
            roll = 99
        }
        switch roll {
        case 0..<48:
            value += 1
            let target = sim.leader ?? running.randomElement(using: &random)
            if let target { sim.propose(value, at: target) }
        case 48..<54:
            var side = Set(sim.replicas.indices.filter { _ in Bool.random(using: &random) })
            switch Int.random(in: 0..<3, using: &random) {
            case 0: sim.split(side)
            case 1: sim.split([Int.random(in: 0..<count, using: &random)])
            default:
                let bridge = Int.random(in: 0..<count, using: &random)
                side.remove(bridge)
                sim.split(side, bridge: bridge)
            }
        case 54..<58:
            sim.heal()
        case 58..<63:
            if let victim = running.randomElement(using: &random) {
                crash(victim, in: sim, &random)
            }
        case 63..<71:
            if let back = crashed.randomElement(using: &random) { sim.restart(back) }
        case 71..<76:
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
        case 76..<79:
            guard let leader = sim.leader else { break }
            if let target = sim.replicas[leader].instance.voters.sorted().randomElement(using: &random) {
                sim.transferLeadership(from: leader, to: target)
            }
        case 79..<84:
            guard let victim = running.randomElement(using: &random) else { break }
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                // A paused VM resuming or an NTP step: 0–3 election timeouts forward.
                sim.jumpClock(
                    victim, by: settings.electionTimeout * 3 / 1000 * Int.random(in: 0...1000, using: &random))
            case 1:
                let (num, den) = [(1, 2), (2, 3), (3, 2), (2, 1)][Int.random(in: 0..<4, using: &random)]
                sim.setClockRate(victim, num: num, den: den)
            default:
                sim.setClockRate(victim, num: 1, den: 1)
            }
        case 84..<89:
            adversary.minorityWrite(sim, &random)
        default:
            break
        }
    }

    /// Heals every fault, restarts every replica, and requires a leader to commit a fresh
    /// proposal within `livenessBound`; then every acknowledged proposal must be in its log or
    /// checkpoint.
    private static func heal(_ sim: RaftSimulation, trace: ((String) -> Void)?) -> Outcome {
        sim.heal()
        sim.loss = 0
        sim.duplication = 0
        for index in sim.replicas.indices {
            sim.restart(index)
            sim.setClockRate(index, num: 1, den: 1)
        }
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
        if let leader = sim.leader, recovery != nil {
            checker.checkAcknowledged(
                in: sim.replicas[leader].instance, checkpoint: sim.replicas[leader].disk.checkpoint)
        }
        let violation =
            checker.violation
            ?? (recovery == nil ? "liveness: no proposal committed within \(livenessBound) of healing" : nil)
        return Outcome(
            violation: violation, proposals: checker.proposals, acknowledged: checker.acknowledged.count,
            snapshotsInstalled: sim.snapshotsInstalled, steps: sim.steps, recovery: recovery)
    }
}
