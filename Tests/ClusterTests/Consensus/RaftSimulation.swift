@testable import Cluster

/// A deterministic, seeded simulation of one Raft group: virtual time, a network that loses,
/// duplicates, delays and reorders messages and can be partitioned, and a disk per replica whose
/// writes take time and can be lost or torn by a crash.
///
/// Each replica's shell executes directives in order; a `.persist` holds back everything after it
/// until the virtual disk completes it, as the contract asks. Invariants are checked as the run
/// goes (see `RaftChecker`); the first violation stops the run and is kept in `violation`.
final class RaftSimulation {
    enum CrashMode: CaseIterable { case inFlightWritten, inFlightLost, inFlightTorn }

    struct Replica {
        let id: NodeID
        let bootstrap: Set<NodeID>
        var instance: RaftInstance
        var running = true
        var disk = RaftDurableState()
        var queue: [RaftDirective] = []
        var writing: RaftPersist?
        var epoch: UInt64 = 0
        var scheduledTick: Duration?
    }

    private enum Event {
        case deliver(to: Int, RaftMessage)
        case tick(Int, epoch: UInt64)
        case diskDone(Int, epoch: UInt64)
    }

    let settings: RaftSettings
    let seed: UInt64
    var loss = 0.0
    var duplication = 0.0
    var minDelay: Duration = .milliseconds(1)
    var maxDelay: Duration = .milliseconds(20)
    var diskLatency: ClosedRange<Int> = 1...5  // milliseconds
    var trace: ((String) -> Void)?
    private(set) var now: Duration = .zero
    private(set) var replicas: [Replica] = []
    private(set) var checker = RaftChecker()
    private(set) var steps = 0
    private var blocked: Set<[Int]> = []
    private var indexByID: [NodeID: Int] = [:]
    private var queue = EventQueue<Event>()
    var random: SimRandom

    var violation: String? { checker.violation }

    /// `voters` founding replicas `r0…`, plus `spares` replicas that start outside the group.
    init(
        voters: Int, spares: Int, seed: UInt64, settings: RaftSettings,
        brokenRule: RaftInstance.BrokenRule? = nil
    ) {
        self.settings = settings
        self.seed = seed
        self.random = SimRandom(seed: seed)
        let founders = Set((0..<voters).map { NodeID("r\($0)") })
        for index in 0..<(voters + spares) {
            let id = NodeID("r\(index)")
            let bootstrap = index < voters ? founders : []
            var instance = RaftInstance(id: id, voters: bootstrap, settings: settings, seed: seed &+ UInt64(index))
            instance.brokenRule = brokenRule
            replicas.append(Replica(id: id, bootstrap: bootstrap, instance: instance))
            indexByID[id] = index
        }
        for index in replicas.indices { execute(index, replicas[index].instance.start(now: now)) }
    }

    // MARK: Running

    /// Processes every event up to `deadline` (inclusive), then sets the clock to it.
    func run(until deadline: Duration) {
        while violation == nil, let next = queue.nextTime, next <= deadline {
            guard let (time, event) = queue.pop() else { break }
            now = time
            handle(event)
            steps += 1
        }
        now = max(now, deadline)
    }

    func run(for duration: Duration) { run(until: now + duration) }

    private func handle(_ event: Event) {
        switch event {
        case .deliver(let index, let message):
            guard replicas[index].running, reachable(indexByID[message.from]!, index) else { return }
            trace?("\(now) \(replicas[index].id) <- \(message.from) t\(message.term) \(message.payload)")
            execute(index, replicas[index].instance.onMessage(message, now: now))
        case .tick(let index, let epoch):
            guard replicas[index].running, replicas[index].epoch == epoch, replicas[index].scheduledTick == now
            else { return }
            replicas[index].scheduledTick = nil
            execute(index, replicas[index].instance.onTick(now: now))
        case .diskDone(let index, let epoch):
            guard replicas[index].epoch == epoch, let write = replicas[index].writing else { return }
            replicas[index].writing = nil
            store(write, on: index)
            drain(index)
        }
    }

    /// The shell: queue the directives and run them in order, holding at each persist.
    private func execute(_ index: Int, _ directives: [RaftDirective]) {
        let before = replicas[index].instance
        for directive in directives {
            if case .scheduleTick(let at) = directive {
                replicas[index].scheduledTick = at
                queue.push(.tick(index, epoch: replicas[index].epoch), at: max(at, now))
            } else {
                replicas[index].queue.append(directive)
            }
        }
        let after = replicas[index].instance
        if after.role != before.role || after.term != before.term {
            trace?("\(now) \(after.id) \(after.role) t\(after.term) last \(after.lastIndex)/\(after.lastTerm)")
        }
        checker.afterStep(replica: index, instance: after, directives: directives)
        drain(index)
    }

    private func drain(_ index: Int) {
        while replicas[index].writing == nil, !replicas[index].queue.isEmpty {
            let directive = replicas[index].queue.removeFirst()
            switch directive {
            case .persist(let persist):
                replicas[index].writing = persist
                let latency = Duration.milliseconds(Int.random(in: diskLatency, using: &random))
                queue.push(.diskDone(index, epoch: replicas[index].epoch), at: now + latency)
            case .send(let message, let to):
                transmit(message, from: index, to: indexByID[to]!)
            case .apply(let entries):
                checker.applied(replica: index, entries: entries)
            case .scheduleTick:
                break
            }
        }
    }

    private func store(_ write: RaftPersist, on index: Int, keeping count: Int? = nil) {
        var disk = replicas[index].disk
        if let term = write.term {
            disk.term = term
            disk.votedFor = write.votedFor
        }
        if let from = write.truncateFrom { disk.log.removeSubrange(Int(from - 1)...) }
        let entries = write.entries.prefix(count ?? write.entries.count)
        if let first = entries.first, first.index != RaftIndex(disk.log.count + 1) {
            checker.fail("r\(index): persist of entry \(first.index) onto a disk log of \(disk.log.count)")
        }
        disk.log.append(contentsOf: entries)
        replicas[index].disk = disk
    }

    private func transmit(_ message: RaftMessage, from: Int, to: Int) {
        guard reachable(from, to), random.unit() >= loss else { return }
        let copies = random.unit() < duplication ? 2 : 1
        for _ in 0..<copies {
            let span = (maxDelay - minDelay) / 1000
            queue.push(.deliver(to: to, message), at: now + minDelay + span * Int.random(in: 0...1000, using: &random))
        }
    }

    // MARK: Faults

    func reachable(_ a: Int, _ b: Int) -> Bool { !blocked.contains(a < b ? [a, b] : [b, a]) }

    func block(_ a: Int, _ b: Int) {
        if a != b { blocked.insert(a < b ? [a, b] : [b, a]) }
    }

    func heal() { blocked = [] }

    /// Cuts every link between `side` and the rest; `bridge` (if any) keeps both.
    func split(_ side: Set<Int>, bridge: Int? = nil) {
        heal()
        for a in side where a != bridge {
            for b in replicas.indices where !side.contains(b) && b != bridge { block(a, b) }
        }
        trace?("\(now) partition \(side.sorted()) bridge \(bridge.map(String.init) ?? "-")")
    }

    /// Stops a replica. The write in flight is kept, lost, or kept in part (a torn tail),
    /// depending on `mode`; everything queued behind it is lost.
    func crash(_ index: Int, mode: CrashMode) {
        guard replicas[index].running else { return }
        if let write = replicas[index].writing {
            switch mode {
            case .inFlightWritten: store(write, on: index)
            case .inFlightLost: break
            case .inFlightTorn:
                if write.term == nil && write.truncateFrom == nil && write.entries.count > 1 {
                    store(write, on: index, keeping: Int.random(in: 1..<write.entries.count, using: &random))
                }
            }
        }
        replicas[index].running = false
        replicas[index].writing = nil
        replicas[index].queue = []
        replicas[index].epoch += 1
        replicas[index].scheduledTick = nil
        checker.crashed(replica: index)
        trace?("\(now) crash \(replicas[index].id) \(mode)")
    }

    /// Restarts a crashed replica from what its disk holds.
    func restart(_ index: Int) {
        guard !replicas[index].running else { return }
        let replica = replicas[index]
        var instance = RaftInstance(
            id: replica.id, voters: replica.bootstrap, durable: replica.disk, settings: settings,
            seed: seed &+ UInt64(index) &+ replica.epoch << 32)
        instance.brokenRule = replica.instance.brokenRule
        replicas[index].instance = instance
        replicas[index].running = true
        trace?("\(now) restart \(replica.id) term \(replica.disk.term) log \(replica.disk.log.count)")
        execute(index, replicas[index].instance.start(now: now))
    }

    // MARK: Client operations

    /// The running replica that leads in the highest term, if any.
    var leader: Int? {
        replicas.indices.filter { replicas[$0].running && replicas[$0].instance.role == .leader }
            .max { replicas[$0].instance.term < replicas[$1].instance.term }
    }

    /// Proposes command `value` at `index`; returns whether it was accepted there.
    @discardableResult
    func propose(_ value: UInt64, at index: Int) -> Bool {
        guard replicas[index].running else { return false }
        let bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
        let (outcome, directives) = replicas[index].instance.propose(bytes, now: now)
        if case .accepted(let at, let term) = outcome {
            checker.proposed(value, replica: index, index: at, term: term)
        }
        execute(index, directives)
        if case .accepted = outcome { return true }
        return false
    }

    func proposeConfiguration(_ voters: Set<NodeID>, at index: Int) {
        let (outcome, directives) = replicas[index].instance.proposeConfiguration(voters, now: now)
        trace?("\(now) configuration \(voters.sorted()) at \(replicas[index].id): \(outcome)")
        execute(index, directives)
    }

    func transferLeadership(from index: Int, to target: NodeID) {
        let (started, directives) = replicas[index].instance.transferLeadership(to: target, now: now)
        trace?("\(now) transfer \(replicas[index].id) -> \(target): \(started)")
        execute(index, directives)
    }
}

extension SimRandom {
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
