import ArgumentParser
import Cluster
import Drill
import Foundation
import Synchronization
import Tabular
import Telemetry
import Wire

/// Starts a real node process (the release `infranaut` binary) on a fresh data dir and drives it
/// over loopback TCP with durable-ack ingest batches from concurrent senders.
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Ingest throughput, ack latency and node memory.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Seconds of measured load (after a 3 s warm-up).")
    var duration = 30

    @Option(help: "Concurrent senders (requests in flight).")
    var concurrency = 32

    @Option(help: "Rows per batch.")
    var rows = 1_000

    @Option(help: "Numeric features per row.")
    var features = 20

    @Option(help: "Models the batches are spread over.")
    var models = 100

    @Option(
        help:
            "Nodes in the cluster (1: a single node; more: a local cluster with the nodes' default replication factor (3), senders spread over all nodes)."
    )
    var nodes = 1

    func run() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-bench-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let launchedNodes = try await launchLocalCluster(
            binary: infranautBinary(binary), nodes: nodes, base: base, idPrefix: "bench",
            extra: ["--log-level", "warning"])
        defer {
            for node in launchedNodes {
                node.process.terminate()
                node.process.waitUntilExit()
            }
        }
        let pid = launchedNodes[0].process.processIdentifier
        print(
            "\(launchedNodes.count) node(s), first pid \(pid) at \(launchedNodes[0].client); \(concurrency) senders, \(rows) rows x \(features) features per batch, \(models) models"
        )

        // Pre-encode one batch body per model; each request only adds its own idempotency key.
        var bodies: [[UInt8]] = []
        var generator = SystemRandomNumberGenerator()
        let names = (0..<features).map { "feature_\($0)" }
        for model in 0..<models {
            var builder = BatchBuilder(model: "bench-model-\(model)")
            for _ in 0..<rows {
                builder.append(
                    (0..<features).map { f in .number(Double.random(in: -1...1, using: &generator) * Double(f + 1)) })
            }
            bodies.append(try builder.take(columns: names).serializedBytes())
        }
        let frozenBodies = bodies
        let clients = try launchedNodes.map { try RequestClient(dial: $0.client) }
        defer { clients.forEach { $0.close() } }
        let recorder = Recorder()
        let start = ContinuousClock.now
        let warmupEnd = start + .seconds(3)
        let end = warmupEnd + .seconds(duration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<concurrency {
                group.addTask {
                    var sequence = 0
                    while ContinuousClock.now < end {
                        let model = (sender + sequence * concurrency) % frozenBodies.count
                        let request = Infranaut_V1_Request.encodedIngest(
                            key: "s\(sender)-\(sequence)", batchBytes: frozenBodies[model])
                        sequence += 1
                        let sent = ContinuousClock.now
                        // Retryable refusals (a shard taking over, a follower not yet known dead)
                        // are retried with the same key, as a client does; they count in the latency.
                        var response = Infranaut_V1_Response()
                        for attempt in 0..<100 {
                            let reply = try await clients[sender % clients.count].request(
                                request, timeout: .seconds(30))
                            response = try Infranaut_V1_Response(serializedBytes: reply)
                            guard response.outcome.code != .ok, response.outcome.retryable, attempt < 99 else { break }
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        guard response.outcome.code == .ok else {
                            throw ValidationError(
                                "ingest failed: \(response.outcome.code.name): \(response.outcome.message)")
                        }
                        if sent >= warmupEnd { recorder.record(ContinuousClock.now - sent) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let measured = recorder.latencies
        let seconds = Double(duration)
        let batchesPerSecond = Double(measured.count) / seconds
        let rowsPerSecond = batchesPerSecond * Double(rows)
        let sorted = measured.sorted()
        func percentile(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return .nan }
            let d = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
            return Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000
        }
        let rss = residentMegabytes(pid: pid)
        try await Task.sleep(for: .seconds(12))  // one checkpoint interval later, load stopped
        let idleRSS = residentMegabytes(pid: pid)
        print(
            String(
                format: "measured %d s: %d batches, %.0f rows/s, %.2f M feature values/s", duration, measured.count,
                rowsPerSecond, rowsPerSecond * Double(features) / 1e6))
        print(
            String(
                format: "ack latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms", percentile(0.5), percentile(0.99),
                percentile(1.0)))
        print(
            String(
                format:
                    "node resident memory (%d models x %d features): %.1f MB at the end of the load, %.1f MB 12 s later",
                models, features, rss, idleRSS))
    }
}

func residentMegabytes(pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return .nan }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}

final class Recorder: Sendable {
    private let values = Mutex<[Duration]>([])
    func record(_ d: Duration) { values.withLock { $0.append(d) } }
    var latencies: [Duration] { values.withLock { $0 } }
}
