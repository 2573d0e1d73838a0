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
            """
    )

    @Option(help: "Nodes in the local cluster.")
    var nodes = 3

    @Option(help: "Nodes killed (SIGKILL) in each round; below the replication factor and leaving a majority.")
    var kill = 1

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
        name: .customLong("work-dir"),
        help: "Keep node data and logs here (default: a temporary directory, removed afterwards).")
    var workDirectory: String?

    @Flag(help: "Print the report as JSON (progress goes to stderr).")
    var json = false

    func options() -> DrillOptions {
        var options = DrillOptions(binary: infranautBinary(binary))
        options.nodes = nodes
        options.kill = kill
        options.duration = .milliseconds(Int((duration * 1000).rounded()))
        options.rounds = rounds
        options.pause = pause.map { .milliseconds(Int(($0 * 1000).rounded())) }
        options.rate = rate
        options.replicationFactor = replicationFactor
        options.shards = shards
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
            for failure in report.failures {
                print(
                    String(
                        format: "round %d: %@ killed; detected after %@, ingest for its %d model(s) recovered after %@",
                        failure.round, failure.node, seconds(failure.detectionSeconds), failure.affectedModels.count,
                        seconds(failure.recoverySeconds)))
            }
            if let detection = report.detection, let recovery = report.recovery {
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

    private func seconds(_ value: Double?) -> String {
        value.map { String(format: "%.2f s", $0) } ?? "never"
    }
}
