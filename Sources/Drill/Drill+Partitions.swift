import Cluster
import Foundation
import Monitoring
import Wire

/// Partition rounds: a third of the way into each round the drill partitions the cluster by
/// setting fault rules on every node (`fault`, sent sealed to each node's peer listener; client
/// ports are never affected, so the load keeps writing through every node); with `--kill 1` it
/// kills one majority-side node a third of the way into the partition; two thirds in it clears the
/// rules (the heal) and restarts the killed node. `flap` replaces the arrangement with a new random
/// split every 2–3 s. What it measures, per arrangement (phase) and round, is in
/// ``DrillReport/PartitionPhase`` and ``DrillReport/PartitionRound``.
extension Drill {
    /// A phase as the drill ran it, tallied once the load has stopped.
    struct PhaseRun {
        var partition: Partition
        var start: ContinuousClock.Instant
        var end: ContinuousClock.Instant
        /// The voters (ids) of each drill model's shard's Raft group, as its leader reported them
        /// just before the phase began (the placement's replicas where no leader answered).
        var replicas: [String: [String]]
        /// The same, read again as the phase ended (before the next rules or the heal): a group's
        /// voters change only through committed configuration entries, so between the two readings
        /// a minority could commit only if one of them gives it a majority of the voters.
        var replicasAtEnd: [String: [String]] = [:]
        var failover: ContinuousClock.Instant?
    }

    struct PartitionRun {
        var round: Int
        var phases: [PhaseRun] = []
        var killed: String?
        var start: ContinuousClock.Instant
        var heal: ContinuousClock.Instant
        var recovery: ContinuousClock.Instant?
    }

    /// How long fault rules last beyond their planned end, should the drill die before it heals.
    static let faultRulesSlack: Duration = .seconds(60)
    /// Longest wait for every model to take writes after a heal.
    static let recoveryLimit: Duration = .seconds(60)
    /// Every model must take writes through every node this soon after a heal.
    static let recoveryTarget: Duration = .seconds(10)

    func partitionRounds(
        _ scenario: PartitionScenario, cluster: [Node], root: String, models: [String], load: DrillLoad
    ) async throws -> [PartitionRun] {
        let secret = try ClusterSecret(file: "\(root)/cluster-secret")
        var generator = SplitMix64(seed: options.seed)
        var runs: [PartitionRun] = []
        let window = options.duration / 3
        for round in 1...options.rounds {
            let roundStart = ContinuousClock.now
            try await Task.sleep(until: roundStart + window, clock: .continuous)
            let ids = cluster.map(\.id)
            let first: Partition
            switch scenario {
            case .split: first = .split(ids)
            case .isolate: first = .isolate(try await busiestPrimary(among: ids, asking: cluster[0]), in: ids)
            case .bridge: first = .bridge(ids)
            case .flap: first = .randomSplit(ids, using: &generator)
            }
            // The victim is a node that sees a majority (the bridge node, or a node on a side of
            // the bridge, for a bridge): the primary of the most shards among them.
            let victim =
                options.kill > 0
                ? try await busiestPrimary(among: ids.filter(first.seesMajority), asking: cluster[0]) : nil
            let victimNode = cluster.first { $0.id == victim }
            var running = cluster
            var phase = try await beginPhase(first, cluster: running, models: models, secret: secret, window: window)
            var run = PartitionRun(round: round, killed: victim, start: phase.start, heal: phase.start + window)
            var nextFlip = scenario == .flap ? phase.start + Self.flipInterval(&generator) : nil
            // Failover is measured through the majority side's nodes, but for the victim.
            var probing = startFailoverProbe(
                phase, through: running.filter { $0 !== victimNode }, deadline: min(run.heal, nextFlip ?? run.heal),
                load: load)
            options.progress("round \(round): partition \(first) in place" + Self.sidesNote(first))
            let killAt = phase.start + window / 3
            while true {
                var wake = min(run.heal, nextFlip ?? run.heal)
                if let victimNode, running.contains(where: { $0 === victimNode }) { wake = min(wake, killAt) }
                if wake > .now { try await Task.sleep(until: wake, clock: .continuous) }
                if let victimNode, running.contains(where: { $0 === victimNode }), ContinuousClock.now >= killAt {
                    kill(victimNode.process!.processIdentifier, SIGKILL)
                    victimNode.process!.waitUntilExit()
                    running.removeAll { $0 === victimNode }
                    load.setTargets(running.map(\.client))
                    options.progress("round \(round): killed \(victimNode.id) (majority side) with SIGKILL")
                }
                if ContinuousClock.now >= run.heal { break }
                if let flip = nextFlip, ContinuousClock.now >= flip {
                    phase.replicasAtEnd = try await readVoters(of: models, asking: running)
                    phase.end = .now
                    phase.failover = await probing.value
                    run.phases.append(phase)
                    let next = Partition.randomSplit(ids, using: &generator)
                    phase = try await beginPhase(next, cluster: running, models: models, secret: secret, window: window)
                    nextFlip = phase.start + Self.flipInterval(&generator)
                    probing = startFailoverProbe(
                        phase, through: running.filter { $0 !== victimNode }, deadline: min(run.heal, nextFlip!),
                        load: load)
                    options.progress("round \(round): flip to \(next)" + Self.sidesNote(next))
                }
            }
            phase.replicasAtEnd = try await readVoters(of: models, asking: running)
            try await applyRules(nil, on: running, secret: secret, lifetime: .zero)
            run.heal = .now
            phase.end = run.heal
            phase.failover = await probing.value
            run.phases.append(phase)
            let healed = running
            if let victimNode {
                let seed = running.first { $0 !== victimNode } ?? cluster[0]
                try start(victimNode, seed: seed.cluster, root: root)
            }
            run.recovery = await Self.probeAll(
                models, through: healed.map(\.client), load: load, until: run.heal + Self.recoveryLimit)
            options.progress(
                "round \(round): healed after \(String(format: "%.1f", (run.heal - run.start).inSeconds)) s; "
                    + (run.recovery.map {
                        String(
                            format: "every model took writes through every node %.2f s later",
                            ($0 - run.heal).inSeconds)
                    } ?? "some model did NOT take writes through every node within 60 s"))
            runs.append(run)
            let roundEnd = roundStart + options.duration
            if roundEnd > .now { try await Task.sleep(until: roundEnd, clock: .continuous) }
            try await waitUntil(timeout: .seconds(60), "every node seeing every other alive after the heal") {
                try await allSeeAlive(cluster.map(\.client))
            }
            load.setTargets(cluster.map(\.client))
        }
        return runs
    }

    /// Reads the ring, then sets every running node's rules for `partition`; the phase starts once
    /// every node has applied them.
    private func beginPhase(
        _ partition: Partition, cluster running: [Node], models: [String], secret: ClusterSecret, window: Duration
    ) async throws -> PhaseRun {
        let replicas = try await readVoters(of: models, asking: running)
        try await applyRules(partition, on: running, secret: secret, lifetime: window + Self.faultRulesSlack)
        let now = ContinuousClock.now
        return PhaseRun(partition: partition, start: now, end: now, replicas: replicas)
    }

    /// Every node's view: a shard's voters are what its newest-term leader reports (a group may
    /// not have reached its placement yet, and what can commit where follows the voters); the
    /// placement's replicas where no node names a leader.
    private func readVoters(of models: [String], asking running: [Node]) async throws -> [String: [String]] {
        var rings: [Infranaut_V1_RingResponse] = []
        for node in running { rings.append(try await ask(node.client, .ring(.init())).ring) }
        var replicas: [String: [String]] = [:]
        for model in models {
            guard let placed = rings.first(where: { !$0.shards.isEmpty }) else { break }
            let shard = ShardID(model: model, shardCount: placed.shards.count).rawValue
            let led = rings.compactMap { ring -> Infranaut_V1_ShardPlacementInfo? in
                guard shard < ring.shards.count else { return nil }
                let view = ring.shards[shard]
                return view.leader.isEmpty ? nil : view
            }.max { $0.term < $1.term }
            replicas[model] = led.map(\.voters) ?? placed.shards[shard].replicas
        }
        return replicas
    }

    /// Sets each node's fault rules for `partition` (nil: clears them), all nodes at once.
    private func applyRules(_ partition: Partition?, on nodes: [Node], secret: ClusterSecret, lifetime: Duration)
        async throws
    {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in nodes {
                let cuts = partition?.cuts(of: node.id) ?? []
                let request = Infranaut_V1_FaultRequest.with {
                    if cuts.isEmpty {
                        $0.clear = true
                    } else {
                        $0.drop = cuts
                        $0.expireAfterMs = UInt32(clamping: lifetime.milliseconds)
                    }
                }
                let (id, peer) = (node.id, node.peer)
                group.addTask {
                    // Loopback, and no rule ever applies to an admin's frames: only a node too busy
                    // to answer within 2 s makes this retry.
                    try await waitUntil(timeout: .seconds(10), "fault rules on \(id)") {
                        let reply = try await askPeer(peer, .fault(request), secret: secret, timeout: .seconds(2))
                        guard reply.outcome.code == .ok else {
                            throw DrillError("\(id) refused its fault rules: \(reply.outcome.message)")
                        }
                        return true
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// Probes, through each of `nodes` that is on the phase's majority side, every model whose
    /// shard's group has a majority of its voters on that side (the others can only commit on the
    /// minority side, where they keep working), until `deadline`, in a task of its own that the
    /// round awaits when the phase ends.
    private func startFailoverProbe(
        _ phase: PhaseRun, through nodes: [Node], deadline: ContinuousClock.Instant, load: DrillLoad
    ) -> Task<ContinuousClock.Instant?, Never> {
        let majority = Set(phase.partition.majority)
        let models = phase.replicas.filter { _, voters in voters.filter(majority.contains).count * 2 > voters.count }
            .keys.sorted()
        let targets = nodes.filter { majority.contains($0.id) }.map(\.client)
        return Task { await Self.probeAll(models, through: targets, load: load, until: deadline) }
    }

    /// When every model had a probe acknowledged through every node of `targets`; nil when some
    /// was not by `deadline`.
    static func probeAll(
        _ models: [String], through targets: [String], load: DrillLoad, until deadline: ContinuousClock.Instant
    ) async -> ContinuousClock.Instant? {
        guard !targets.isEmpty else { return nil }
        return await withTaskGroup(of: ContinuousClock.Instant?.self) { group in
            for model in models {
                for target in targets { group.addTask { await load.probe(model, through: target, until: deadline) } }
            }
            var last: ContinuousClock.Instant?
            var all = true
            for await acknowledged in group {
                guard let acknowledged else {
                    all = false
                    continue
                }
                last = max(last ?? acknowledged, acknowledged)
            }
            return all ? last : nil
        }
    }

    /// Among `candidates`, the node that is primary of the most shards in `node`'s view (the first
    /// candidate on a tie).
    private func busiestPrimary(among candidates: [String], asking node: Node) async throws -> String {
        let view = try await members(asking: node.client)
        let primaries = Dictionary(view.map { ($0.id, $0.primaries.count) }, uniquingKeysWith: { $1 })
        guard let first = candidates.first else { throw DrillError("no node to choose from") }
        return candidates.dropFirst().reduce(first) { best, id in
            primaries[id, default: 0] > primaries[best, default: 0] ? id : best
        }
    }

    static func flipInterval(_ generator: inout SplitMix64) -> Duration {
        .milliseconds(Int.random(in: 2_000...3_000, using: &generator))
    }

    private static func sidesNote(_ partition: Partition) -> String {
        let minority = partition.minority.isEmpty ? "none" : partition.minority.joined(separator: ",")
        return " (minority: \(minority); majority side: \(partition.majority.joined(separator: ",")))"
    }
}

extension Drill {
    /// Fills the report's partition rounds from what the drill recorded: per phase, the first
    /// refusal or timeout the client saw from a node that should notice the partition, when every
    /// model took writes through the majority side, and the writes minority nodes acknowledged.
    static func tallyPartitions(
        _ runs: [PartitionRun], batches: [SentBatch], failedAttempts: [FailedAttempt],
        nodeByClient: [String: String], into report: inout DrillReport
    ) {
        for run in runs {
            var round = DrillReport.PartitionRound(round: run.round)
            round.killed = run.killed
            round.partitionSeconds = (run.heal - run.start).inSeconds
            round.recoverySeconds = run.recovery.map { ($0 - run.heal).inSeconds }
            for phase in run.phases {
                let minority = Set(phase.partition.minority)
                let watched = minority.isEmpty ? Set(phase.partition.cutOff) : minority
                func during(_ instant: ContinuousClock.Instant) -> Bool {
                    instant >= phase.start && instant < phase.end
                }
                let detection = failedAttempts.filter {
                    during($0.at) && watched.contains(nodeByClient[$0.target] ?? "")
                }.map(\.at).min()
                let minorityAcks = batches.filter { batch in
                    guard let at = batch.acknowledged, let by = batch.acknowledgedBy else { return false }
                    return during(at) && minority.contains(nodeByClient[by] ?? "")
                }
                // A shard whose replicas are mostly on the minority side could commit there (with
                // a quorum per shard); any other shard could not, from an attempt sent once the
                // partition was in place. An attempt sent before it may have been committed before
                // the cut and answered just after; a replayed answer reports a commit made earlier.
                let uncommittable = minorityAcks.filter { batch in
                    guard let sent = batch.acknowledgedAttemptSent, sent >= phase.start, !batch.acknowledgedAsReplay
                    else { return false }
                    return [phase.replicas, phase.replicasAtEnd].allSatisfy { reading in
                        guard let replicas = reading[batch.model] else { return true }
                        return replicas.filter(minority.contains).count * 2 <= replicas.count
                    }
                }
                let unexplained = uncommittable.prefix(10).map { batch in
                    let by = batch.acknowledgedBy.map { nodeByClient[$0] ?? $0 } ?? "?"
                    let before = phase.replicas[batch.model]?.joined(separator: ",") ?? "?"
                    let after = phase.replicasAtEnd[batch.model]?.joined(separator: ",") ?? "?"
                    return "\(batch.model) key \(batch.key) acknowledged by \(by); voters [\(before)] then [\(after)]"
                }
                round.phases.append(
                    DrillReport.PartitionPhase(
                        sides: phase.partition.description, minority: phase.partition.minority,
                        majority: phase.partition.majority, startSeconds: (phase.start - run.start).inSeconds,
                        seconds: (phase.end - phase.start).inSeconds,
                        detectionSeconds: detection.map { ($0 - phase.start).inSeconds },
                        failoverSeconds: phase.failover.map { ($0 - phase.start).inSeconds },
                        minorityAcks: minorityAcks.count, minorityAcksWithoutReplicaMajority: uncommittable.count,
                        unexplainedAcks: Array(unexplained)))
            }
            report.minorityAcks += round.phases.reduce(0) { $0 + $1.minorityAcks }
            report.minorityAcksWithoutReplicaMajority += round.phases.reduce(0) {
                $0 + $1.minorityAcksWithoutReplicaMajority
            }
            switch round.recoverySeconds {
            case nil:
                report.problems.append(
                    "round \(run.round): after the heal, some model did not take a write through every node within \(recoveryLimit)"
                )
            case let seconds? where seconds > recoveryTarget.inSeconds:
                report.problems.append(
                    "round \(run.round): every model took writes through every node only "
                        + String(format: "%.2f s after the heal (at most %.0f s)", seconds, recoveryTarget.inSeconds))
            default: break
            }
            report.partitions.append(round)
        }
        if report.minorityAcksWithoutReplicaMajority > 0 {
            report.problems.append(
                "the minority side acknowledged \(report.minorityAcksWithoutReplicaMajority) write(s) of models whose shard had most of its replicas on the majority side: writes it could not commit"
            )
        }
    }
}
