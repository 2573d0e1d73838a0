@testable import Cluster

/// A chaos adversary that acts at the moments where Raft's commitment rules matter, driven by
/// leadership events rather than by the clock: leader churn around partially replicated entries.
///
/// Its plan follows the Raft paper's Figure 8 in general terms, each step at random:
/// 1. a leader cut off with a minority takes writes that reach only that minority, and crashes
///    (it stays down: back too soon, it would win the next election with its newer log);
/// 2. the next leader is isolated the moment it is elected, so its first entry stays on it alone,
///    and the crashed replicas return;
/// 3. the leader after that is isolated and crashed at its first commit of its term, which covers
///    whatever it inherited from earlier terms, before the new commit index spreads; the isolated
///    leader of step 2 reconnects, and a correlated failure takes down the most up-to-date
///    followers for a while, so that those left with it are just a majority.
/// While a plan runs it owns the faults (`RaftChaos` draws no others), until the leader after
/// step 3 is elected. Outside a plan it also isolates new leaders and crashes leaders at their first commit, each
/// with its own probability. A correct core survives all of it; one that commits entries of
/// earlier terms by counting replicas loses a committed entry.
struct RaftAdversary {
    enum Plan: Equatable {
        case idle
        /// Step 1 done (`old` wrote to a minority and crashed): isolate the next leader.
        case isolateNext(old: Int, since: Duration)
        /// Step 2 done: watch the next leader other than `isolated`.
        case watchNext(isolated: Int, since: Duration)
        /// Step 3 pending: crash `leader` at its first commit in `term`.
        case crashAtFirstCommit(leader: Int, term: RaftTerm, isolated: Int?)
        /// Step 3 done: no other faults until the next leader is elected.
        case settle(since: Duration)
    }

    /// How often a new leader is isolated outside a plan.
    var isolateNewLeader = 0.0
    /// How often a new leader is crashed at its first commit outside a plan.
    var crashOnFirstCommit = 0.0
    /// How often an idle adversary starts a plan when a leader commits.
    var startPlan = 0.0
    private(set) var plan = Plan.idle
    /// The values the adversary proposes, apart from the client's.
    private var value: UInt64 = 1 << 32
    /// A plan that has not moved for this long is dropped.
    static let patience = Duration.seconds(2)

    var enabled: Bool { isolateNewLeader > 0 || crashOnFirstCommit > 0 }

    /// Runs `sim` for `duration`, stopping at each new leader and each commit to react.
    mutating func run(_ sim: RaftSimulation, for duration: Duration, _ random: inout SimRandom) {
        let end = sim.now + duration
        guard enabled else { return sim.run(until: end) }
        while sim.now < end && sim.violation == nil {
            let leader = sim.leader
            let before = leader.map { sim.status[$0] }
            var newLeader = false
            var committed = false
            sim.run(until: end) {
                guard let now = sim.leader else { return false }
                newLeader = now != leader || sim.status[now].term != before?.term
                committed = !newLeader && sim.status[now].commit != before?.commit
                return newLeader || committed
            }
            guard let current = sim.leader else { continue }
            if newLeader { onNewLeader(current, sim, &random) }
            if committed { onCommit(current, sim, &random) }
        }
    }

    /// Step 1: isolates the leader with a random minority, proposes 1–3 values there, and crashes
    /// it 1–15 ms later.
    mutating func minorityWrite(_ sim: RaftSimulation, _ random: inout SimRandom) {
        guard let leader = sim.leader else { return }
        // Sets iterate in a per-process order: sort before drawing, so that a seed replays.
        let others = sim.replicas[leader].instance.voters.sorted().compactMap { sim.indexByID[$0] }.filter {
            $0 != leader
        }
        let largest = max(0, (others.count + 1) / 2 - 1)
        let partners = others.shuffled(using: &random).prefix(Int.random(in: 0...largest, using: &random))
        sim.trace?("\(sim.now) adversary: minority write at r\(leader) with \(partners.sorted())")
        sim.split(Set(partners).union([leader]))
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            value += 1
            sim.propose(value, at: leader)
        }
        sim.run(for: .milliseconds(Int.random(in: 1...15, using: &random)))
        sim.crash(leader, mode: RaftSimulation.CrashMode.allCases.randomElement(using: &random)!)
        plan = .isolateNext(old: leader, since: sim.now)
    }

    private mutating func onNewLeader(_ leader: Int, _ sim: RaftSimulation, _ random: inout SimRandom) {
        let term = sim.status[leader].term
        switch plan {
        case .isolateNext(let old, let since) where sim.now - since < Self.patience && leader != old:
            isolate(leader, sim, &random)
            plan = .watchNext(isolated: leader, since: sim.now)
        case .watchNext(let isolated, let since) where sim.now - since < Self.patience && leader != isolated:
            sim.trace?("\(sim.now) adversary: watching r\(leader)'s first commit")
            plan = .crashAtFirstCommit(leader: leader, term: term, isolated: isolated)
        case .settle:
            plan = .idle
        default:
            plan = .idle
            if random.unit() < isolateNewLeader {
                isolate(leader, sim, &random)
            } else if random.unit() < crashOnFirstCommit {
                plan = .crashAtFirstCommit(leader: leader, term: term, isolated: nil)
            }
        }
    }

    private mutating func onCommit(_ leader: Int, _ sim: RaftSimulation, _ random: inout SimRandom) {
        if plan == .idle, random.unit() < startPlan { return minorityWrite(sim, &random) }
        guard case .crashAtFirstCommit(leader, sim.status[leader].term, let isolated) = plan else { return }
        plan = .idle
        sim.trace?("\(sim.now) adversary: crash r\(leader) at its first commit, \(sim.status[leader].commit)")
        sim.split([leader])  // also ends the isolation of step 2
        sim.crash(leader, mode: RaftSimulation.CrashMode.allCases.randomElement(using: &random)!)
        guard let isolated else { return }
        plan = .settle(since: sim.now)
        // A correlated failure takes the most up-to-date followers down with the leader, so that
        // those left, with the isolated leader of step 2, are just a majority.
        sim.restart(isolated)
        let voters = sim.replicas[leader].instance.voters.sorted().compactMap { sim.indexByID[$0] }
        let others = voters.filter { $0 != leader && $0 != isolated }.sorted {
            let (a, b) = (sim.replicas[$0].instance, sim.replicas[$1].instance)
            return (a.lastTerm, a.lastIndex, $1) > (b.lastTerm, b.lastIndex, $0)
        }
        for victim in others.prefix(max(0, voters.count - 1 - (voters.count / 2 + 1))) {
            sim.crash(
                victim, mode: .inFlightWritten, restartAfter: .milliseconds(Int.random(in: 300...900, using: &random)))
        }
    }

    /// Cuts a new leader off before its first entry leaves it (crashing it half the time), and
    /// brings back most replicas that are down.
    private func isolate(_ leader: Int, _ sim: RaftSimulation, _ random: inout SimRandom) {
        sim.trace?("\(sim.now) adversary: isolate new leader r\(leader)")
        sim.split([leader])
        if Bool.random(using: &random) { sim.crash(leader, mode: .inFlightWritten) }
        for index in sim.replicas.indices where index != leader && Int.random(in: 0..<4, using: &random) > 0 {
            sim.restart(index)
        }
    }
}
