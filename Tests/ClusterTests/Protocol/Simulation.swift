import Cluster

/// A deterministic, seeded simulation of a SWIM cluster: virtual time, an event queue, and a
/// network with configurable loss, delay and partitions. Nodes can be paused (messages are
/// buffered and processed on resume, like SIGSTOP/SIGCONT), crashed and restarted.
final class Simulation {
    enum NodeState: Equatable { case stopped, running, paused, crashed }

    struct Node {
        let id: NodeID
        let address: String
        var instance: SWIMInstance
        var state: NodeState = .stopped
        var scheduledTick: Duration?
        var inbox: [SWIMMessage] = []
        var group = 0
        var restarts: UInt64 = 0
    }

    struct Change {
        var time: Duration
        var observer: Int
        var change: MemberChange
    }

    private enum Event {
        case deliver(to: Int, SWIMMessage)
        case tick(Int)
        case join(Int, seeds: [String])
    }

    let settings: SWIMSettings
    var loss: Double = 0
    var minDelay: Duration = .milliseconds(1)
    var maxDelay: Duration = .milliseconds(10)
    private(set) var now: Duration = .zero
    private(set) var nodes: [Node] = []
    private(set) var changes: [Change] = []
    private(set) var messagesSent = 0
    private var indexByAddress: [String: Int] = [:]
    private var queue = EventQueue<Event>()
    private var random: SimRandom
    private let seed: UInt64

    init(nodeCount: Int, seed: UInt64, settings: SWIMSettings = SWIMSettings(), roles: Set<NodeRole> = [.worker]) {
        self.settings = settings
        self.seed = seed
        self.random = SimRandom(seed: seed)
        for index in 0..<nodeCount {
            let id = NodeID("n\(index)")
            let address = "sim://n\(index):7946"
            let member = Member(id: id, address: address, roles: roles)
            nodes.append(
                Node(
                    id: id, address: address,
                    instance: SWIMInstance(settings: settings, myself: member, seed: seed &+ UInt64(index))))
            indexByAddress[address] = index
        }
    }

    // MARK: Scenario control

    /// Node 0 forms the cluster at `now`; node i joins through node 0 at `now + i × stagger`.
    func startAll(stagger: Duration = .milliseconds(20)) {
        for index in nodes.indices {
            let seeds = index == 0 ? [] : [nodes[0].address]
            queue.push(.join(index, seeds: seeds), at: now + stagger * index)
        }
    }

    /// Starts every node already knowing every other (as after a completed join), without the
    /// join storm; used to keep large simulations fast.
    func startConverged() {
        let state = nodes.map { MemberUpdate($0.instance.myself) }
        for index in nodes.indices {
            nodes[index].state = .running
            handle(index, nodes[index].instance.join(seeds: [], now: now))
            let sender = nodes[(index + 1) % nodes.count]
            let snapshot = SWIMMessage(
                sender: Peer(id: sender.id, address: sender.address),
                payload: .pushPull(members: state, isReply: true)
            )
            handle(index, nodes[index].instance.onMessage(snapshot, now: now))
        }
    }

    func run(for duration: Duration) {
        run(until: now + duration)
    }

    func run(until end: Duration) {
        while let time = queue.nextTime, time <= end {
            guard let (time, event) = queue.pop() else { break }
            now = time
            process(event)
        }
        now = end
    }

    /// Runs until `condition` holds (checked every `step`) or `limit` passes; returns whether it held.
    func run(until condition: () -> Bool, step: Duration = .milliseconds(50), limit: Duration) -> Bool {
        let deadline = now + limit
        while now < deadline {
            if condition() { return true }
            run(for: step)
        }
        return condition()
    }

    /// ``run(for:)`` and ``run(until:step:limit:)`` for long simulations (hundreds of nodes): the
    /// same events, with the test's task yielding every simulated 100 ms so that suites waiting on
    /// real sockets and timers get the machine's threads in between.
    func runYielding(for duration: Duration) async {
        let end = now + duration
        while now < end {
            run(until: min(end, now + .milliseconds(100)))
            await Task.yield()
        }
    }

    func runYielding(until condition: () -> Bool, step: Duration = .milliseconds(50), limit: Duration) async -> Bool {
        let deadline = now + limit
        while now < deadline {
            if condition() { return true }
            run(for: step)
            await Task.yield()
        }
        return condition()
    }

    func crash(_ index: Int) {
        nodes[index].state = .crashed
        nodes[index].inbox = []
        nodes[index].scheduledTick = nil
    }

    func pause(_ index: Int) {
        nodes[index].state = .paused
    }

    func resume(_ index: Int) {
        guard nodes[index].state == .paused else { return }
        nodes[index].state = .running
        let inbox = nodes[index].inbox
        nodes[index].inbox = []
        for message in inbox {
            handle(index, nodes[index].instance.onMessage(message, now: now))
        }
        handle(index, nodes[index].instance.onTick(now: now))
    }

    /// Restarts a crashed node as a fresh process (incarnation 0, new PRNG seed) joining via `seedIndex`.
    func restart(_ index: Int, seedIndex: Int) {
        nodes[index].restarts += 1
        let old = nodes[index].instance.myself
        let member = Member(id: old.id, address: old.address, roles: old.roles)
        nodes[index].instance = SWIMInstance(
            settings: settings, myself: member, seed: seed &+ UInt64(index) &+ nodes[index].restarts << 32)
        nodes[index].state = .stopped
        queue.push(.join(index, seeds: [nodes[seedIndex].address]), at: now)
    }

    func leave(_ index: Int) {
        handle(index, nodes[index].instance.leave(now: now))
    }

    /// Splits the network: messages only flow between nodes of the same group.
    func partition(_ groups: [[Int]]) {
        for (group, members) in groups.enumerated() {
            for index in members { nodes[index].group = group }
        }
    }

    func heal() {
        for index in nodes.indices { nodes[index].group = 0 }
    }

    // MARK: Observation

    var runningIndices: [Int] { nodes.indices.filter { nodes[$0].state == .running } }

    /// Whether every running node sees exactly the running nodes as `alive`, at the incarnation
    /// each of them holds for itself, and nothing else as live.
    /// A node that has not started yet (pending join) makes this `false`.
    func converged(among indices: [Int]? = nil) -> Bool {
        if indices == nil && nodes.contains(where: { $0.state == .stopped }) { return false }
        let group = indices ?? runningIndices
        let expected = Set(group.map { nodes[$0].instance.myself })
        for index in group {
            let view = Set(nodes[index].instance.liveMembers)
            if view != expected { return false }
        }
        return true
    }

    /// A readable description of how running nodes' views differ from the expected one.
    func viewDifferences() -> String {
        let expected = Set(runningIndices.map { nodes[$0].instance.myself })
        var lines: [String] = []
        for index in runningIndices {
            let view = Set(nodes[index].instance.liveMembers)
            if view != expected {
                lines.append("n\(index): extra \(view.subtracting(expected)) missing \(expected.subtracting(view))")
            }
        }
        return lines.joined(separator: "; ")
    }

    /// When `observer` first recorded `subject` with `status` at or after `since`.
    func firstChange(observer: Int, subject: NodeID, to status: MemberStatus, since: Duration) -> Duration? {
        changes.first {
            $0.observer == observer && $0.time >= since && $0.change.member.id == subject
                && $0.change.member.status == status
        }?.time
    }

    /// Every change to `status` about `subject` recorded at or after `since`.
    func changes(about subject: NodeID, to status: MemberStatus, since: Duration) -> [Change] {
        changes.filter { $0.time >= since && $0.change.member.id == subject && $0.change.member.status == status }
    }

    // MARK: Engine

    private func process(_ event: Event) {
        switch event {
        case .join(let index, let seeds):
            guard nodes[index].state == .stopped else { return }
            nodes[index].state = .running
            handle(index, nodes[index].instance.join(seeds: seeds, now: now))
        case .tick(let index):
            guard nodes[index].scheduledTick == now else { return }
            nodes[index].scheduledTick = nil
            guard nodes[index].state == .running else { return }
            handle(index, nodes[index].instance.onTick(now: now))
        case .deliver(let index, let message):
            switch nodes[index].state {
            case .running: handle(index, nodes[index].instance.onMessage(message, now: now))
            case .paused: nodes[index].inbox.append(message)
            case .stopped, .crashed: break
            }
        }
    }

    private func handle(_ index: Int, _ directives: [SWIMDirective]) {
        for directive in directives {
            switch directive {
            case .send(let message, let address):
                transmit(message, from: index, to: address)
            case .scheduleTick(let at):
                let time = max(at, now)
                if nodes[index].scheduledTick != time {
                    nodes[index].scheduledTick = time
                    queue.push(.tick(index), at: time)
                }
            case .memberChanged(let change):
                changes.append(Change(time: now, observer: index, change: change))
            }
        }
    }

    private func transmit(_ message: SWIMMessage, from sender: Int, to address: String) {
        messagesSent += 1
        guard let target = indexByAddress[address] else { return }
        let dropped = loss > 0 && Double.random(in: 0..<1, using: &random) < loss
        let delay = minDelay + (maxDelay - minDelay) * Double.random(in: 0..<1, using: &random)
        guard !dropped, nodes[sender].group == nodes[target].group else { return }
        queue.push(.deliver(to: target, message), at: now + delay)
    }
}
