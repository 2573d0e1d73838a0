import Cluster
import Foundation
import Wire

/// A failover drill on a local cluster of real node processes.
///
/// Each round: load runs for a third of the round; then `kill` nodes (never the first, which the
/// drill asks about placement) are killed with SIGKILL at once; the drill measures when every
/// survivor reports each of them dead and when each model whose primary it was accepted a new
/// batch again; optionally one survivor is paused; at the end of the round the killed nodes are
/// restarted on their data and addresses, and the next round starts once all see each other.
///
/// With a partition scenario (``DrillOptions/partition``), each round partitions the cluster
/// instead, through fault rules on every node (Drill+Partitions.swift).
///
/// Verification, after the load stopped: for every model, the drill asks the cluster for the
/// receipts of every key it sent (`ReceiptsRequest`). An acknowledged key without a receipt is a
/// lost batch. The model's batch count minus the number of its keys with a receipt is the number
/// of batches applied more than once (each op carries one key, and a key has one receipt).
public struct Drill: Sendable {
    let options: DrillOptions

    public init(options: DrillOptions) { self.options = options }

    final class Node: @unchecked Sendable {
        // Only touched by the drill's driving task.
        let id: String
        let data: String
        var process: Process?
        var client = ""
        var cluster = ""
        var peer = ""

        init(id: String, data: String) {
            self.id = id
            self.data = data
        }
    }

    public func run() async throws -> DrillReport {
        if let problem = options.problem { throw DrillError(problem) }
        guard FileManager.default.isExecutableFile(atPath: options.binary) else {
            throw DrillError("no infranaut binary at \(options.binary)")
        }
        let runID = String(UUID().uuidString.prefix(8)).lowercased()
        let root =
            options.workDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-drill-\(runID)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer {
            if !options.keepData && options.workDirectory == nil { try? FileManager.default.removeItem(atPath: root) }
        }
        let cluster = (0..<options.nodes).map { Node(id: "drill-\($0)", data: "\(root)/node-\($0)") }
        defer {
            for node in cluster {
                guard let process = node.process, process.isRunning else { continue }
                kill(process.processIdentifier, SIGCONT)
                process.terminate()
                // A node that does not stop within 10 s of SIGTERM is killed.
                let deadline = Date().addingTimeInterval(10)
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
        }
        for node in cluster {
            try start(node, seed: node === cluster[0] ? nil : cluster[0].cluster, root: root)
        }
        try await waitUntil(timeout: .seconds(60), "all \(options.nodes) nodes seeing each other alive") {
            try await allSeeAlive(cluster.map(\.client))
        }
        options.progress(
            "\(options.nodes)-node cluster formed in \(root); \(options.rounds) round(s) of \(options.duration), "
                + (options.partition.map { "partition \($0.rawValue), killing \(options.kill) during it" }
                    ?? "killing \(options.kill) per round"))

        let models = try await chooseModels(cluster: cluster, runID: runID)
        let load = DrillLoad(
            settings: .init(models: models, rate: options.rate, rowsPerBatch: options.rowsPerBatch, runID: runID),
            targets: cluster.map(\.client))
        load.start()
        let started = ContinuousClock.now
        var report = DrillReport(
            nodes: options.nodes, killPerRound: options.kill, rounds: options.rounds,
            roundSeconds: options.duration.inSeconds)
        report.partition = options.partition
        var kills: [(failure: Int, at: ContinuousClock.Instant)] = []
        var partitions: [PartitionRun] = []
        if let scenario = options.partition {
            partitions = try await partitionRounds(scenario, cluster: cluster, root: root, models: models, load: load)
        } else {
            kills = try await killRounds(cluster: cluster, root: root, models: models, load: load, into: &report)
        }
        options.progress(
            "stopping the load after \(String(format: "%.1f", (ContinuousClock.now - started).inSeconds)) s; waiting for batches in flight"
        )
        await load.stop()
        let batches = load.batches
        if options.partition == nil {
            Self.tallyKills(kills, batches: batches, into: &report)
        } else {
            Self.tallyPartitions(
                partitions, batches: batches, failedAttempts: load.failedAttempts,
                nodeByClient: Dictionary(cluster.map { ($0.client, $0.id) }, uniquingKeysWith: { $1 }), into: &report)
        }
        try await Self.audit(batches: batches, models: models, asking: cluster.map(\.client), into: &report)
        report.retries = load.retries
        if let fatal = load.fatal { report.problems.append(fatal) }
        for failure in report.failures {
            if failure.detectionSeconds == nil {
                report.problems.append(
                    "round \(failure.round): \(failure.node) was not declared dead by every survivor within 60 s")
            }
            if failure.recoverySeconds == nil && !failure.affectedModels.isEmpty {
                report.problems.append(
                    "round \(failure.round): ingest for the models \(failure.node) was primary of did not recover within 60 s"
                )
            }
        }
        report.detection = .of(report.failures.compactMap(\.detectionSeconds))
        report.recovery = .of(report.failures.compactMap(\.recoverySeconds))
        if options.partition != nil {
            let phases = report.partitions.flatMap(\.phases)
            report.detection = .of(phases.compactMap(\.detectionSeconds))
            report.failover = .of(phases.compactMap(\.failoverSeconds))
            report.recovery = .of(report.partitions.compactMap(\.recoverySeconds))
        }
        return report
    }

    /// The kill rounds (see the type's comment); returns each failure's index and when it happened.
    private func killRounds(
        cluster: [Node], root: String, models: [String], load: DrillLoad, into report: inout DrillReport
    ) async throws -> [(failure: Int, at: ContinuousClock.Instant)] {
        var kills: [(failure: Int, at: ContinuousClock.Instant)] = []
        for round in 1...options.rounds {
            let roundStart = ContinuousClock.now
            try await Task.sleep(until: roundStart + options.duration / 3, clock: .continuous)
            let victims = (0..<options.kill).map {
                cluster[1 + ((round - 1) * options.kill + $0) % (options.nodes - 1)]
            }
            let survivors = cluster.filter { node in !victims.contains { $0 === node } }
            let ring = try await ask(cluster[0].client, .ring(.init())).ring
            load.setTargets(survivors.map(\.client))
            let killed = ContinuousClock.now
            for victim in victims {
                kill(victim.process!.processIdentifier, SIGKILL)
                victim.process!.waitUntilExit()
            }
            var detections: [Task<Duration?, Never>] = []
            for victim in victims {
                let affected = models.filter { model in
                    let shard = ShardID(model: model, shardCount: ring.shards.count).rawValue
                    return ring.shards[shard].replicas.first == victim.id
                }
                report.failures.append(.init(round: round, node: victim.id, affectedModels: affected))
                kills.append((report.failures.count - 1, killed))
                let addresses = survivors.map(\.client)
                let id = victim.id
                detections.append(
                    Task {
                        try? await waitUntil(timeout: .seconds(60)) {
                            for address in addresses {
                                guard try await members(asking: address).first(where: { $0.id == id })?.state == .dead
                                else { return false }
                            }
                            return true
                        }
                        let elapsed = ContinuousClock.now - killed
                        return elapsed < .seconds(60) ? elapsed : nil
                    })
            }
            for (offset, detection) in detections.enumerated() {
                let index = report.failures.count - victims.count + offset
                report.failures[index].detectionSeconds = await detection.value?.inSeconds
                let failure = report.failures[index]
                options.progress(
                    "round \(round): killed \(failure.node) (primary of \(failure.affectedModels.count) drill model(s)); "
                        + (failure.detectionSeconds.map {
                            String(format: "declared dead by all survivors after %.2f s", $0)
                        } ?? "NOT declared dead within 60 s"))
            }
            // The pause starts once every interrupted model took writes again, so it does not
            // stretch the recovery it would otherwise overlap.
            let interrupted = Set(report.failures.suffix(victims.count).flatMap(\.affectedModels))
            // A round lasts at least until then (at most 60 s after the kill).
            try? await waitUntil(timeout: .seconds(60) - (ContinuousClock.now - killed)) {
                load.recovered(interrupted, after: killed)
            }
            if let pause = options.pause, let paused = survivors.last, paused !== cluster[0] {
                report.pauses.append(
                    try await pauseNode(
                        paused, for: pause, round: round, watcher: cluster[0], load: load, targets: survivors))
            }
            let roundEnd = roundStart + options.duration
            if roundEnd > .now { try await Task.sleep(until: roundEnd, clock: .continuous) }
            for victim in victims { try start(victim, seed: cluster[0].cluster, root: root) }
            try await waitUntil(timeout: .seconds(60), "restarted nodes rejoining") {
                try await allSeeAlive(cluster.map(\.client))
            }
            load.setTargets(cluster.map(\.client))
            options.progress(
                "round \(round): restarted \(victims.map(\.id).joined(separator: ", ")); all \(options.nodes) nodes alive again"
            )
        }
        return kills
    }

    /// Recovery: per failure, the first acknowledgement of a batch first sent after the kill, for
    /// the slowest affected model. Only batches first sent before the next kill count, and only
    /// within 60 s.
    private static func tallyKills(
        _ kills: [(failure: Int, at: ContinuousClock.Instant)], batches: [SentBatch], into report: inout DrillReport
    ) {
        for (position, (index, at)) in kills.enumerated() {
            let next = kills.dropFirst(position + 1).first { $0.at > at }?.at
            var slowest: Duration? = .zero
            for model in report.failures[index].affectedModels {
                let first = batches.filter { batch in
                    batch.model == model && batch.firstSent > at && next.map { batch.firstSent < $0 } ?? true
                }.compactMap(\.acknowledged).min()
                guard let first, first - at <= .seconds(60) else {
                    slowest = nil
                    break
                }
                slowest = max(slowest!, first - at)
            }
            report.failures[index].recoverySeconds =
                report.failures[index].affectedModels.isEmpty ? nil : slowest?.inSeconds
        }
    }

    /// The drill's models: for every node, two models whose shard it is primary of, so every kill
    /// interrupts some models.
    private func chooseModels(cluster: [Node], runID: String) async throws -> [String] {
        let ring = try await ask(cluster[0].client, .ring(.init())).ring
        guard !ring.shards.isEmpty else { throw DrillError("the cluster reported no shards") }
        var perNode: [String: [String]] = [:]
        var candidate = 0
        while perNode.count < cluster.count || perNode.values.contains(where: { $0.count < 2 }) {
            guard candidate < 10_000 else {
                throw DrillError("the ring gives some node no primary shard; is every node a worker?")
            }
            let model = "drill-\(runID)-m\(candidate)"
            candidate += 1
            let shard = ShardID(model: model, shardCount: ring.shards.count).rawValue
            guard let primary = ring.shards[shard].replicas.first, (perNode[primary]?.count ?? 0) < 2 else { continue }
            perNode[primary, default: []].append(model)
        }
        return cluster.flatMap { perNode[$0.id] ?? [] }
    }

    private func pauseNode(
        _ node: Node, for pause: Duration, round: Int, watcher: Node, load: DrillLoad, targets: [Node]
    ) async throws -> DrillReport.Pause {
        load.setTargets(targets.filter { $0 !== node }.map(\.client))
        kill(node.process!.processIdentifier, SIGSTOP)
        let resume = ContinuousClock.now + pause
        var declaredDead = false
        while ContinuousClock.now < resume {
            if let state = try? await members(asking: watcher.client).first(where: { $0.id == node.id })?.state,
                state == .dead
            {
                declaredDead = true
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(node.process!.processIdentifier, SIGCONT)
        load.setTargets(targets.map(\.client))
        options.progress(
            "round \(round): paused \(node.id) for \(pause); "
                + (declaredDead ? "it was declared dead meanwhile" : "it was not declared dead"))
        return .init(round: round, node: node.id, seconds: pause.inSeconds, declaredDead: declaredDead)
    }

    func start(_ node: Node, seed: String?, root: String) throws {
        let launched = try launchNode(
            binary: options.binary, dataDirectory: node.data,
            client: node.client.isEmpty ? "tcp://127.0.0.1:0" : node.client,
            cluster: node.cluster.isEmpty ? "tcp://127.0.0.1:0" : node.cluster,
            peer: node.peer.isEmpty ? "tcp://127.0.0.1:0" : node.peer,
            secretFile: try writeClusterSecret(to: "\(root)/cluster-secret"),
            extra: [
                "--node-id", node.id, "--log-level", "info", "--replication-factor", "\(options.replicationFactor)",
            ]
                + (options.shards.map { ["--shards", "\($0)"] } ?? [])
                + (seed.map { ["--seed", $0] } ?? []) + options.nodeArguments,
            logPath: "\(root)/\(node.id).log")
        node.process = launched.process
        node.client = launched.client
        node.cluster = launched.cluster
        node.peer = launched.peer
    }
}
