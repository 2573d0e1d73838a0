@testable import Cluster

/// A replica's clock: `local = anchorLocal + (global − anchorGlobal) × num / den`. It never goes
/// back: it only jumps forward, and its rate stays positive.
struct SimClock {
    var anchorGlobal: Duration = .zero
    var anchorLocal: Duration = .zero
    var rate: (num: Int, den: Int) = (1, 1)

    func local(_ global: Duration) -> Duration {
        rate == (1, 1)
            ? anchorLocal + (global - anchorGlobal) : anchorLocal + (global - anchorGlobal) * rate.num / rate.den
    }

    /// The global time at which the clock reads `local` (rounded down; at most a nanosecond early).
    func global(_ local: Duration) -> Duration {
        rate == (1, 1)
            ? anchorGlobal + (local - anchorLocal) : anchorGlobal + (local - anchorLocal) * rate.den / rate.num
    }

    mutating func reanchor(at global: Duration) {
        anchorLocal = local(global)
        anchorGlobal = global
    }
}

// Network partitions, crashes and restarts, clock jumps and drift.
extension RaftSimulation {
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
    /// depending on `mode`; everything queued behind it is lost, and so is the state machine.
    /// With `restartAfter`, the replica restarts on its own after that downtime.
    func crash(_ index: Int, mode: CrashMode, restartAfter downtime: Duration? = nil) {
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
        replicas[index].installing = [:]
        replicas[index].stateMachine = []
        replicas[index].epoch += 1
        if let downtime { queue.push(.restart(index, epoch: replicas[index].epoch), at: now + downtime) }
        replicas[index].scheduledTick = nil
        replicas[index].tickQueuedAt = nil
        updateStatus(index)
        checker.crashed(replica: index)
        trace?("\(now) crash \(replicas[index].id) \(mode)")
    }

    /// Restarts a crashed replica from what its disk holds: the Raft state, and the state machine
    /// from the checkpoint.
    func restart(_ index: Int) {
        guard !replicas[index].running else { return }
        let replica = replicas[index]
        var instance = RaftInstance(
            id: replica.id, voters: replica.bootstrap, durable: replica.disk.durable, settings: settings,
            seed: seed &+ UInt64(index) &+ replica.epoch << 32)
        instance.brokenRule = replica.instance.brokenRule
        replicas[index].instance = instance
        replicas[index].running = true
        replicas[index].stateMachine = replica.disk.checkpoint
        checker.restored(replica: index, state: replica.disk.checkpoint)
        let durable = replica.disk.durable
        trace?(
            "\(now) restart \(replica.id) term \(durable.term) snapshot \(durable.snapshot?.index ?? 0) "
                + "log \(durable.log.first?.index ?? 0)…\(durable.log.last?.index ?? 0)")
        execute(index, replicas[index].instance.start(now: localNow(index)))
    }

    /// Steps replica `index`'s clock forward by `amount` (a paused VM resuming, an NTP step).
    func jumpClock(_ index: Int, by amount: Duration) {
        replicas[index].clock.reanchor(at: now)
        replicas[index].clock.anchorLocal += amount
        trace?("\(now) clock \(replicas[index].id) jumps \(amount)")
        scheduleTick(index)
    }

    /// Makes replica `index`'s clock run at `num / den` of real time from now on.
    func setClockRate(_ index: Int, num: Int, den: Int) {
        precondition(num > 0 && den > 0)
        replicas[index].clock.reanchor(at: now)
        replicas[index].clock.rate = (num, den)
        trace?("\(now) clock \(replicas[index].id) rate \(num)/\(den)")
        scheduleTick(index)
    }
}
