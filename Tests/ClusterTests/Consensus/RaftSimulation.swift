@testable import Cluster

/// A deterministic, seeded simulation of one Raft group: virtual time, a network that loses,
/// duplicates, delays and reorders messages and snapshots and can be partitioned, a disk per
/// replica whose writes take time and can be lost or torn by a crash, and a clock per replica
/// that can jump forward or run slow or fast (`RaftSimulation+Faults.swift`).
///
/// Each replica's shell executes directives in order; a `.persist` holds back everything after it
/// until the virtual disk completes it, as the contract asks. The state machine is the sequence
/// of applied entries; a checkpoint is a copy of a prefix of it. Invariants are checked as the
/// run goes (see `RaftChecker`); the first violation stops the run and is kept in `violation`.
final class RaftSimulation {
    enum CrashMode: CaseIterable { case inFlightWritten, inFlightLost, inFlightTorn }

    /// A checkpoint of the state machine: the applied entries `1...meta.index`.
    struct Snapshot: Hashable {
        var meta: RaftSnapshotMeta
        var state: [RaftEntry]
    }

    /// What survives a crash: the durable Raft state (whose `snapshot` names the checkpoint) and
    /// the checkpoint's state. The stored log may still hold entries the checkpoint covers.
    struct Disk {
        var durable = RaftDurableState()
        var checkpoint: [RaftEntry] = []
    }

    /// One replica and its shell (a class: the harness updates it in place).
    final class Replica {
        let id: NodeID
        let bootstrap: Set<NodeID>
        var instance: RaftInstance
        var running = true
        var disk = Disk()
        /// The state machine: the entries applied so far, in order from index 1.
        var stateMachine: [RaftEntry] = []
        /// Snapshots received in full, stored as pending and accepted by `installSnapshot`, until
        /// the persist that makes them the durable snapshot (then they leave this table).
        var installing: [RaftSnapshotMeta: [RaftEntry]] = [:]
        var queue: [RaftDirective] = []
        var writing: RaftPersist?
        var epoch: UInt64 = 0
        var scheduledTick: Duration?
        var tickGeneration: UInt64 = 0
        /// The global time of the live tick event, while one is queued.
        var tickQueuedAt: Duration?
        var clock = SimClock()

        init(id: NodeID, bootstrap: Set<NodeID>, instance: RaftInstance) {
            self.id = id
            self.bootstrap = bootstrap
            self.instance = instance
        }
    }

    /// What the harness reads often, kept apart so that reading it copies no replica.
    struct Status {
        var leads = false
        var term: RaftTerm = 0
        var commit: RaftIndex = 0
    }

    enum Packet {
        case message(RaftMessage)
        case snapshot(Snapshot, term: RaftTerm)
    }

    enum Event {
        case deliver(to: Int, from: Int, Packet)
        case tick(Int, epoch: UInt64, generation: UInt64)
        case diskDone(Int, epoch: UInt64)
        /// Restarts the replica if it is still down from the crash that scheduled this.
        case restart(Int, epoch: UInt64)
    }

    let settings: RaftSettings
    let seed: UInt64
    let founders: Set<NodeID>
    var loss = 0.0
    var duplication = 0.0
    var minDelay: Duration = .milliseconds(1)
    var maxDelay: Duration = .milliseconds(20)
    var diskLatency: ClosedRange<Int> = 1...5  // milliseconds
    /// Chance that a shell takes a checkpoint and compacts after an apply (0: never).
    var compactionRate = 0.0
    /// The most applied entries a compaction keeps in the log (it keeps a random 0…this many).
    var compactionKeep = 0
    var trace: ((String) -> Void)?
    var now: Duration = .zero
    var replicas: [Replica] = []
    /// Per replica: whether it runs and leads, its term and commit index (after its last step).
    private(set) var status: [Status] = []
    var checker: RaftChecker
    private(set) var steps = 0
    private(set) var snapshotsInstalled = 0
    var blocked: Set<[Int]> = []
    var indexByID: [NodeID: Int] = [:]
    var queue = EventQueue<Event>()
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
        self.founders = founders
        self.checker = RaftChecker(founders: founders)
        for index in 0..<(voters + spares) {
            let id = NodeID("r\(index)")
            let bootstrap = index < voters ? founders : []
            var instance = RaftInstance(id: id, voters: bootstrap, settings: settings, seed: seed &+ UInt64(index))
            instance.brokenRule = brokenRule
            replicas.append(Replica(id: id, bootstrap: bootstrap, instance: instance))
            status.append(Status())
            indexByID[id] = index
        }
        for index in replicas.indices { execute(index, replicas[index].instance.start(now: localNow(index))) }
    }

    // MARK: Running

    /// Processes every event up to `deadline` (inclusive), then sets the clock to it; stops early,
    /// right after the event that made `stop` true.
    func run(until deadline: Duration, stop: (() -> Bool)? = nil) {
        while violation == nil, let next = queue.nextTime, next <= deadline {
            guard let (time, event) = queue.pop() else { break }
            now = time
            handle(event)
            steps += 1
            if let stop, stop() { return }
        }
        now = max(now, deadline)
    }

    func run(for duration: Duration, stop: (() -> Bool)? = nil) { run(until: now + duration, stop: stop) }

    /// The time replica `index` reads from its own clock.
    func localNow(_ index: Int) -> Duration { replicas[index].clock.local(now) }

    private func handle(_ event: Event) {
        switch event {
        case .deliver(let index, let from, let packet):
            guard replicas[index].running, reachable(from, index) else { return }
            receive(packet, from: from, at: index)
        case .tick(let index, let epoch, let generation):
            guard replicas[index].running, replicas[index].epoch == epoch,
                replicas[index].tickGeneration == generation, let deadline = replicas[index].scheduledTick
            else { return }
            guard localNow(index) >= deadline else {
                // The conversion from the local deadline to global time rounded down.
                queue.push(.tick(index, epoch: epoch, generation: generation), at: now + .nanoseconds(1))
                return
            }
            replicas[index].scheduledTick = nil
            replicas[index].tickQueuedAt = nil
            execute(index, replicas[index].instance.onTick(now: localNow(index)))
        case .diskDone(let index, let epoch):
            guard replicas[index].epoch == epoch, let write = replicas[index].writing else { return }
            replicas[index].writing = nil
            store(write, on: index)
            if write.snapshot != nil {
                // The installed snapshot is durable: it replaces the state machine.
                snapshotsInstalled += 1
                replicas[index].stateMachine = replicas[index].disk.checkpoint
                checker.restored(replica: index, state: replicas[index].disk.checkpoint)
            }
            drain(index)
        case .restart(let index, let epoch):
            if replicas[index].epoch == epoch { restart(index) }
        }
    }

    private func receive(_ packet: Packet, from: Int, at index: Int) {
        switch packet {
        case .message(let message):
            trace?("\(now) \(replicas[index].id) <- \(message.from) t\(message.term) \(message.payload)")
            execute(index, replicas[index].instance.onMessage(message, now: localNow(index)))
        case .snapshot(let snapshot, let term):
            let meta = snapshot.meta
            checker.checkSnapshot(snapshot.state, meta: meta, at: "snapshot from r\(from)")
            let (accepted, directives) = replicas[index].instance.installSnapshot(
                meta, leader: replicas[from].id, term: term, now: localNow(index))
            trace?("\(now) \(replicas[index].id) <- r\(from) t\(term) snapshot \(meta.index)/\(meta.term): \(accepted)")
            // A snapshot that is not accepted is discarded; its state never reaches the state machine.
            if accepted { replicas[index].installing[meta] = snapshot.state }
            execute(index, directives)
        }
    }

    /// The shell: queue the directives and run them in order, holding at each persist.
    func execute(_ index: Int, _ directives: [RaftDirective]) {
        let before = status[index]
        for directive in directives {
            if case .scheduleTick(let at) = directive {
                replicas[index].scheduledTick = at
                scheduleTick(index)
            } else {
                replicas[index].queue.append(directive)
            }
        }
        updateStatus(index)
        if let trace, status[index].leads != before.leads || status[index].term != before.term {
            let after = replicas[index].instance
            trace("\(now) \(after.id) \(after.role) t\(after.term) last \(after.lastIndex)/\(after.lastTerm)")
        }
        checker.afterStep(replica: index, instance: replicas[index].instance, directives: directives)
        drain(index)
    }

    func updateStatus(_ index: Int) {
        let replica = replicas[index]
        status[index] = Status(
            leads: replica.running && replica.instance.role == .leader, term: replica.instance.term,
            commit: replica.instance.commitIndex)
    }

    /// Queues the timer event for the replica's scheduled local deadline, in global time (unless
    /// the live one is already due then); older tick events are ignored when they fire.
    func scheduleTick(_ index: Int) {
        let replica = replicas[index]
        guard let deadline = replica.scheduledTick else { return }
        let at = max(now, replica.clock.global(deadline))
        guard at != replica.tickQueuedAt else { return }
        replica.tickGeneration += 1
        replica.tickQueuedAt = at
        queue.push(.tick(index, epoch: replica.epoch, generation: replica.tickGeneration), at: at)
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
                transmit(.message(message), from: index, to: indexByID[to]!)
            case .sendSnapshot(let to, let meta, let term):
                let disk = replicas[index].disk
                guard let stored = disk.durable.snapshot, stored.index >= meta.index else {
                    checker.fail("r\(index): asked to send snapshot \(meta.index) without a durable one")
                    return
                }
                transmit(
                    .snapshot(Snapshot(meta: stored, state: disk.checkpoint), term: term), from: index,
                    to: indexByID[to]!)
            case .apply(let entries):
                replicas[index].stateMachine.append(contentsOf: entries)
                checker.applied(replica: index, entries: entries)
                maybeCompact(index)
            case .scheduleTick:
                break
            }
        }
    }

    /// At random, the shell checkpoints a prefix of its state machine, keeping a random number of
    /// applied entries in the log.
    private func maybeCompact(_ index: Int) {
        guard compactionRate > 0, random.unit() < compactionRate else { return }
        checkpoint(
            index, through: replicas[index].stateMachine.count - Int.random(in: 0...compactionKeep, using: &random))
    }

    /// The shell of replica `index` checkpoints its state machine's first `through` entries,
    /// makes the checkpoint durable, compacts, and deletes the stored entries it covers (at once,
    /// or at a later compaction: a crash in between leaves them behind).
    func checkpoint(_ index: Int, through: Int) {
        let replica = replicas[index]
        guard through > 0, through <= replica.stateMachine.count,
            let meta = replica.instance.snapshotMeta(at: RaftIndex(through)),
            meta.index > replica.instance.snapshotIndex
        else { return }
        let state = Array(replica.stateMachine.prefix(through))
        checker.checkSnapshot(state, meta: meta, at: "r\(index) checkpoint")
        replica.disk.durable.snapshot = meta
        replica.disk.checkpoint = state
        replica.instance.compact(through: meta.index)
        if Bool.random(using: &random) { replica.disk.durable.log.removeAll { $0.index <= meta.index } }
        trace?("\(now) \(replica.id) compacted through \(meta.index)")
    }

    func store(_ write: RaftPersist, on index: Int, keeping count: Int? = nil) {
        var disk = replicas[index].disk
        if let term = write.term {
            disk.durable.term = term
            disk.durable.votedFor = write.votedFor
        }
        if let meta = write.snapshot {
            guard let state = replicas[index].installing.removeValue(forKey: meta) else {
                checker.fail("r\(index): persist of snapshot \(meta.index) that was never received")
                return
            }
            disk.durable.snapshot = meta
            disk.checkpoint = state
            disk.durable.log.removeAll { $0.index <= meta.index }
        }
        if let from = write.truncateFrom { disk.durable.log.removeAll { $0.index >= from } }
        let entries = write.entries.prefix(count ?? write.entries.count)
        let storedLast = disk.durable.log.last?.index ?? disk.durable.snapshot?.index ?? 0
        if let first = entries.first, first.index != storedLast + 1 {
            checker.fail("r\(index): persist of entry \(first.index) onto a disk log ending at \(storedLast)")
        }
        disk.durable.log.append(contentsOf: entries)
        replicas[index].disk = disk
    }

    func transmit(_ packet: Packet, from: Int, to: Int) {
        guard reachable(from, to), random.unit() >= loss else { return }
        let copies = random.unit() < duplication ? 2 : 1
        for _ in 0..<copies {
            let span = (maxDelay - minDelay) / 1000
            let at = now + minDelay + span * Int.random(in: 0...1000, using: &random)
            queue.push(.deliver(to: to, from: from, packet), at: at)
        }
    }

    // MARK: Client operations

    /// The running replica that leads in the highest term, if any.
    var leader: Int? {
        var best: Int?
        for index in status.indices where status[index].leads {
            if best == nil || status[index].term > status[best!].term { best = index }
        }
        return best
    }

    /// Proposes command `value` at `index`; returns whether it was accepted there.
    @discardableResult
    func propose(_ value: UInt64, at index: Int) -> Bool {
        guard replicas[index].running else { return false }
        let (outcome, directives) = replicas[index].instance.propose(RaftChecker.command(value), now: localNow(index))
        if case .accepted(let at, let term) = outcome {
            checker.proposed(value, replica: index, index: at, term: term)
        }
        execute(index, directives)
        if case .accepted = outcome { return true }
        return false
    }

    func proposeConfiguration(_ voters: Set<NodeID>, at index: Int) {
        let (outcome, directives) = replicas[index].instance.proposeConfiguration(voters, now: localNow(index))
        trace?("\(now) configuration \(voters.sorted()) at \(replicas[index].id): \(outcome)")
        execute(index, directives)
    }

    func transferLeadership(from index: Int, to target: NodeID) {
        let (started, directives) = replicas[index].instance.transferLeadership(to: target, now: localNow(index))
        trace?("\(now) transfer \(replicas[index].id) -> \(target): \(started)")
        execute(index, directives)
    }
}

extension SimRandom {
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
