import ArgumentParser
import Cluster
import Foundation
import Wire

/// Whether window results stay bounded by their retention (issue 11): one node, one model with
/// short windows and a short `retention.windows`, a steady stream with event times = now; every
/// `--sample-seconds` the stored window count (`windows`, closed ones), the oldest result's age,
/// the data directory's size and the node's resident memory.
struct RetentionBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "Stored windows, data dir and memory under a steady stream with retention.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Seconds of the stream.")
    var seconds = 200

    @Option(name: .customLong("batches-per-second"), help: "Batches sent each second.")
    var batchesPerSecond = 2

    @Option(help: "Rows per batch.")
    var rows = 500

    @Option(help: "Numeric features per row.")
    var features = 20

    @Option(name: .customLong("window-seconds"), help: "Window size of the spec.")
    var windowSeconds = 1

    @Option(name: .customLong("retention-seconds"), help: "The spec's retention.windows.")
    var retentionSeconds = 30

    @Option(name: .customLong("checkpoint-interval-ms"), help: "The node's checkpoint interval (default: the node's).")
    var checkpointIntervalMs: Int?

    @Option(name: .customLong("sample-seconds"), help: "Seconds between samples.")
    var sampleSeconds = 10

    func run() async throws {
        let extra = checkpointIntervalMs.map { ["--checkpoint-interval-ms", "\($0)"] } ?? []
        let cluster = try await BenchNodes.launch(binary: binary, nodes: 1, prefix: "retention", extra: extra)
        defer { cluster.stop() }
        let client = try RequestClient(dial: cluster.nodes[0].client)
        defer { client.close() }
        let model = "retention-model"
        let shape = SyntheticModels(features: features)
        try await shape.applySpecs(
            [model], windowMs: UInt64(windowSeconds) * 1_000, retentionMs: UInt64(retentionSeconds) * 1_000,
            referenceRows: 1_000, through: client)
        print(
            "node pid \(cluster.pid), data dir \(cluster.dataDirectory()); \(batchesPerSecond) batches/s of \(rows) rows x \(features) features, \(windowSeconds) s windows, retention \(retentionSeconds) s, checkpoints every \(checkpointIntervalMs.map { "\($0) ms" } ?? "10 s (default)")"
        )
        print("   t s  stored windows  oldest end age s  data dir MB  (sst MB, wal MB)  RSS MB")
        let start = ContinuousClock.now
        let end = start + .seconds(seconds)
        let rows = self.rows
        let pause = Duration.seconds(1) / batchesPerSecond
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var sequence = 0
                var next = ContinuousClock.now
                while next < end {
                    let batch = shape.batch(
                        model: model, rows: rows, eventTimes: Array(repeating: unixMilliseconds(), count: rows))
                    try await sendRetrying(
                        Infranaut_V1_Request.encodedIngest(
                            key: "r\(sequence)", batchBytes: try batch.serializedBytes()),
                        through: client, what: "ingest")
                    sequence += 1
                    next += pause
                    try await Task.sleep(until: next)
                }
            }
            group.addTask {
                var next = start + .seconds(sampleSeconds)
                while next <= end {
                    try await Task.sleep(until: next)
                    try await sample(model: model, client: client, cluster: cluster, at: next - start)
                    next += .seconds(sampleSeconds)
                }
            }
            try await group.waitForAll()
        }
        // The stream stopped: two more samples, one checkpoint interval apart, show what settles.
        for _ in 0..<2 {
            try await Task.sleep(for: .milliseconds(checkpointIntervalMs ?? 10_000))
            try await sample(model: model, client: client, cluster: cluster, at: ContinuousClock.now - start)
        }
    }

    private func sample(model: String, client: RequestClient, cluster: BenchNodes, at elapsed: Duration) async throws {
        let reply = try await sendRetrying(.windows(.with { $0.modelID = model }), through: client, what: "windows")
        let windows = reply.windows.windows
        let oldestAge = windows.map { Double(unixMilliseconds() - $0.endUnixMs) / 1000 }.max() ?? .nan
        let disk = directoryMegabytes(cluster.dataDirectory())
        print(
            String(
                format: "%6.0f  %13d  %16.1f  %11.1f  (%6.1f, %6.1f)  %6.1f", elapsed / .seconds(1), windows.count,
                oldestAge, disk.total, disk.tables, disk.logs, residentMegabytes(pid: cluster.pid)))
    }
}
