import ArgumentParser
import Drill
import Foundation

struct DrillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract:
            "Failover drill: a local cluster of node processes under load, nodes killed with SIGKILL, every acknowledged record checked.",
        discussion: """
            Starts N `infranaut start` processes on loopback and a client that pushes batches with unique
            idempotency keys to all of them, retrying every retryable refusal until the batch is
            acknowledged. In each round, a third of the way in, K nodes are killed with SIGKILL; the
            drill reports how long until every survivor declared each of them dead and until every model
            whose primary it was accepted a new batch again. Optionally one survivor is paused with
            SIGSTOP/SIGCONT. Killed nodes restart at the end of their round. Finally every key sent is
            checked against the cluster's receipts: records lost and records applied twice must be 0.
            Exits with status 1 when they are not, or when a failure was not detected or not recovered.

            With --partition, each round partitions the cluster instead (fault rules on every node,
            set through each node's peer listener; client ports stay reachable) a third of the way in,
            and heals it two thirds in: split (the first (N-1)/2 nodes apart), isolate (the primary of
            the most shards alone), bridge (two sides that cannot talk, one node talking to both) or
            flap (a new random split every 2-3 s, --seed). With --kill 1 one node that sees a majority
            is killed during the partition and restarted after the heal. Per partition the drill
            reports detection (the client's first refusal or timeout from the minority), failover
            (every model writable through the majority side), writes the minority acknowledged, and
            recovery (every model writable through every node after the heal; at most 10 s passes).
            """
    )

    @Option(help: "Nodes in the local cluster (default 3; 5 with --partition).")
    var nodes: Int?

    @Option(
        help:
            "Nodes killed (SIGKILL) in each round; below the replication factor and leaving a majority (default 1; with --partition 0, or 1 to kill a node during the partition)."
    )
    var kill: Int?

    @Option(help: "Partition the cluster instead of killing nodes: split, isolate, bridge or flap.")
    var partition: String?

    @Option(help: "Seed of flap's random splits.")
    var seed: UInt64 = 1

    @Option(help: "Seconds per round.")
    var duration = 20.0

    @Option(help: "Rounds (each kills --kill nodes and restarts them at its end).")
    var rounds = 1

    @Option(help: "Also pause one surviving node per round for this many seconds (SIGSTOP, then SIGCONT).")
    var pause: Double?

    @Option(help: "Batches per second the client sends, in all.")
    var rate = 400

    @Option(name: .customLong("replication-factor"), help: "The nodes' replication factor.")
    var replicationFactor = 3

    @Option(help: "The nodes' shard count (default: the nodes' own default), to drill the shape a cluster runs with.")
    var shards: Int?

    @Option(help: "Path of the infranaut binary that runs the nodes (default: this one).")
    var binary: String?

    @Option(
        name: .customLong("node-arg"), parsing: .unconditionalSingleValue,
        help: "A flag for every node (repeat for each word: --node-arg --park-idle-models-after-s --node-arg 1).")
    var nodeArguments: [String] = []

    @Option(
        name: .customLong("work-dir"),
        help: "Keep node data and logs here (default: a temporary directory, removed afterwards).")
    var workDirectory: String?

    @Flag(help: "Print the report as JSON (progress goes to stderr).")
    var json = false

    func options() -> DrillOptions {
        var options = DrillOptions(binary: infranautBinary(binary))
        options.partition = partition.flatMap(PartitionScenario.init(rawValue:))
        options.nodes = nodes ?? (options.partition == nil ? 3 : 5)
        options.kill = kill ?? (options.partition == nil ? 1 : 0)
        options.seed = seed
        options.duration = .milliseconds(Int((duration * 1000).rounded()))
        options.rounds = rounds
        options.pause = pause.map { .milliseconds(Int(($0 * 1000).rounded())) }
        options.rate = rate
        options.replicationFactor = replicationFactor
        options.shards = shards
        options.nodeArguments = nodeArguments
        options.workDirectory = workDirectory
        let json = self.json
        options.progress = { line in
            if json {
                FileHandle.standardError.write(Data((line + "\n").utf8))
            } else {
                print(line)
            }
        }
        return options
    }

    func validate() throws {
        guard duration.isFinite, pause?.isFinite ?? true else {
            throw ValidationError("--duration and --pause must be numbers of seconds")
        }
        if let partition, PartitionScenario(rawValue: partition) == nil {
            throw ValidationError(
                "--partition \(partition) is not a scenario; use "
                    + PartitionScenario.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if let problem = options().problem { throw ValidationError(problem) }
    }

    func run() async throws {
        let report: DrillReport
        do {
            report = try await Drill(options: options()).run()
        } catch let error as DrillError {
            throw CLIError("drill failed: \(error.description)")
        }
        if json {
            try printJSON(report)
        } else {
            printPartitions(report)
            for failure in report.failures {
                print(
                    String(
                        format: "round %d: %@ killed; detected after %@, ingest for its %d model(s) recovered after %@",
                        failure.round, failure.node, seconds(failure.detectionSeconds), failure.affectedModels.count,
                        seconds(failure.recoverySeconds)))
            }
            if report.partition == nil, let detection = report.detection, let recovery = report.recovery {
                print(
                    String(
                        format: "detection: median %.2f s, max %.2f s; recovery: median %.2f s, max %.2f s",
                        detection.median, detection.max, recovery.median, recovery.max))
            }
            print(
                "batches sent \(report.batchesSent), acknowledged \(report.batchesAcknowledged) (\(report.recordsAcknowledged) records), unresolved \(report.batchesUnresolved); retries \(report.retries)"
            )
            print("records lost: \(report.recordsLost); records duplicated: \(report.recordsDuplicated)")
            for problem in report.problems { print("problem: \(problem)") }
            print(report.passed ? "drill passed" : "drill FAILED")
        }
        if !report.passed { throw ExitCode(1) }
    }

    private func printPartitions(_ report: DrillReport) {
        for round in report.partitions {
            for phase in round.phases {
                print(
                    "round \(round.round) \(phase.sides): detection \(seconds(phase.detectionSeconds)), failover \(seconds(phase.failoverSeconds)), "
                        + "\(phase.minorityAcks) write(s) acknowledged by the minority, \(phase.minorityAcksWithoutReplicaMajority) of them without a replica majority there"
                )
            }
            print(
                "round \(round.round): "
                    + (round.killed.map { "\($0) killed during the partition; " } ?? "")
                    + String(format: "healed after %.1f s; ", round.partitionSeconds)
                    + (round.recoverySeconds.map {
                        String(format: "every model writable through every node %.2f s after the heal", $0)
                    } ?? "some model NOT writable through every node within 60 s of the heal"))
        }
        guard report.partition != nil else { return }
        func summary(_ name: String, _ value: DrillReport.Summary?) -> String {
            "\(name) " + (value.map { String(format: "median %.2f s, max %.2f s", $0.median, $0.max) } ?? "never")
        }
        print(
            [
                summary("detection:", report.detection), summary("failover:", report.failover),
                summary("recovery:", report.recovery),
            ].joined(separator: "; "))
        print(
            "writes acknowledged by the minority: \(report.minorityAcks), \(report.minorityAcksWithoutReplicaMajority) of them without a replica majority there"
        )
    }

    private func seconds(_ value: Double?) -> String {
        value.map { String(format: "%.2f s", $0) } ?? "never"
    }
}
