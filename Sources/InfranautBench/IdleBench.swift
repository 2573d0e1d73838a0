import ArgumentParser
import Cluster
import Drill
import Foundation
import Wire

/// What many shards cost a node that has nothing to do: a local cluster per shard count, one
/// small batch written to enough models that (nearly) every shard holds data and has claimed its
/// term, then CPU time and resident memory of every node over a quiet interval.
struct IdleBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle", abstract: "CPU and memory of idle nodes, by shard count.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Shard counts to compare, one cluster each (comma-separated).")
    var shards = "64,1024"

    @Option(
        help:
            "Nodes per cluster (the nodes' default replication factor 3: each node holds shards x min(3, nodes) / nodes replicas)."
    )
    var nodes = 2

    @Option(help: "Models written once each before the quiet interval (8 per shard touches ~all shards).")
    var models = 8_192

    @Option(help: "Seconds of the quiet interval that is measured.")
    var seconds = 60

    func run() async throws {
        let counts = shards.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty else { throw ValidationError("--shards needs at least one count") }
        for count in counts {
            try await measure(shardCount: count)
        }
    }

    private func measure(shardCount: Int) async throws {
        let cluster = try await BenchNodes.launch(
            binary: binary, nodes: nodes, prefix: "idle", extra: ["--shards", "\(shardCount)"])
        defer { cluster.stop() }
        let launched = cluster.nodes
        let pids = launched.map(\.process.processIdentifier)
        let emptyRSS = pids.map { residentMegabytes(pid: $0) }

        let written = ContinuousClock.now
        try await writeOnce(to: launched.map(\.client))
        let writeTook = ContinuousClock.now - written
        // Two checkpoint intervals and several sweeps: what the writes left behind settles.
        try await Task.sleep(for: .seconds(25))

        let before = pids.map { cpuSeconds(pid: $0) }
        let start = ContinuousClock.now
        try await Task.sleep(for: .seconds(seconds))
        let elapsed = (ContinuousClock.now - start) / .seconds(1)
        let after = pids.map { cpuSeconds(pid: $0) }
        let percent = zip(before, after).map { ($1 - $0) / elapsed * 100 }
        let rss = pids.map { residentMegabytes(pid: $0) }
        let replicas = shardCount * min(2, nodes) / nodes
        print(
            String(
                format:
                    "%d shards, %d nodes (~%d replicas per node), %d models: first write to all took %.1f s; idle CPU per node %@ %% of a core; RSS per node %@ MB (before any write %@ MB)",
                shardCount, nodes, replicas, models, writeTook / .seconds(1),
                percent.map { String(format: "%.2f", $0) }.joined(separator: " / "),
                rss.map { String(format: "%.0f", $0) }.joined(separator: " / "),
                emptyRSS.map { String(format: "%.0f", $0) }.joined(separator: " / ")))
    }

    /// One small batch per model, 32 at a time, through every node in turn; retryable refusals
    /// (a shard claiming its term) are retried with the same key.
    private func writeOnce(to addresses: [String]) async throws {
        let clients = try addresses.map { try RequestClient(dial: $0) }
        defer { clients.forEach { $0.close() } }
        try await forEachConcurrently(models, concurrency: 32) { model, _ in
            let batch = Infranaut_V1_TelemetryBatch.with {
                $0.modelID = "idle-model-\(model)"
                $0.rowCount = 1
                $0.columns = [
                    .with {
                        $0.name = "x"
                        $0.doubles = .with { $0.values = [Double(model)] }
                    }
                ]
            }
            try await sendRetrying(
                Infranaut_V1_Request.encodedIngest(key: "idle-\(model)", batchBytes: try batch.serializedBytes()),
                through: clients[model % clients.count], what: "ingest", pause: .milliseconds(50))
        }
    }
}

/// User plus system CPU time of a process so far, in seconds.
func cpuSeconds(pid: Int32) -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return .nan }
    // Fields after the command name: state is field 3; utime and stime are fields 14 and 15.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}
