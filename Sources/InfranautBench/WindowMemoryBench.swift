import ArgumentParser
import Cluster
import Foundation
import Wire

/// A node's memory with many monitored models and a day of hourly windows on disk (issue 11):
/// `--models` specs (hourly windows, `--features` numeric features, `--segments` segment
/// columns), a small uploaded reference each, then per model `--hours` batches of `--rows` rows,
/// one per past hour in time order, so `--hours` - 1 windows (and their segment windows) close.
/// After the load, resident memory and the data directory while checkpoints run.
struct WindowMemoryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "window-memory", abstract: "Node memory with many models and a day of hourly windows kept.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Models, each with a spec.")
    var models = 1_000

    @Option(help: "Numeric features per model.")
    var features = 20

    @Option(help: "Segment columns per model (3 values each).")
    var segments = 1

    @Option(help: "Hourly batches per model (event times in the past hours, the last in the current hour).")
    var hours = 25

    @Option(help: "Rows per batch.")
    var rows = 50

    @Option(help: "Requests in flight.")
    var concurrency = 32

    @Option(name: .customLong("settle-seconds"), help: "Seconds sampled after the load (checkpoints run every 10 s).")
    var settleSeconds = 40

    @Option(
        name: .customLong("node-arg"), parsing: .unconditionalSingleValue,
        help: "A flag for the node (repeat for each word: --node-arg --log-retained-entries --node-arg 0).")
    var nodeArgs: [String] = []

    func run() async throws {
        let cluster = try await BenchNodes.launch(binary: binary, nodes: 1, prefix: "window-memory", extra: nodeArgs)
        defer { cluster.stop() }
        let client = try RequestClient(dial: cluster.nodes[0].client)
        defer { client.close() }
        let pid = cluster.pid
        let shape = SyntheticModels(features: features, segments: segments, segmentValues: 3)
        let names = (0..<models).map { "memory-model-\($0)" }
        let hourMs: Int64 = 3_600_000
        print(
            "node pid \(pid); \(models) models x \(features) features + \(segments) segment column(s) of 3 values, hourly windows; \(hours) batches of \(rows) rows per model; RSS before any write \(String(format: "%.1f", residentMegabytes(pid: pid))) MB"
        )

        let began = ContinuousClock.now
        try await shape.applySpecs(names, windowMs: UInt64(hourMs), referenceRows: 200, through: client)
        let applied = ContinuousClock.now - began
        print(
            "specs and references applied in \(applied); RSS \(String(format: "%.1f", residentMegabytes(pid: pid))) MB")

        let nowMs = unixMilliseconds()
        let currentHour = nowMs / hourMs * hourMs
        let hours = self.hours
        let rows = self.rows
        try await forEachConcurrently(models, concurrency: concurrency) { index, _ in
            for hour in 0..<hours {
                let windowStart = currentHour - Int64(hours - 1 - hour) * hourMs
                let times = spreadEventTimes(rows: rows, endMs: windowStart + hourMs, spanMs: hourMs).map {
                    min($0, nowMs)
                }
                let batch = shape.batch(model: names[index], rows: rows, eventTimes: times)
                try await sendRetrying(
                    Infranaut_V1_Request.encodedIngest(
                        key: "m\(index)-h\(hour)", batchBytes: try batch.serializedBytes()),
                    through: client, what: "ingest")
            }
        }
        let loaded = ContinuousClock.now - began - applied
        print(
            "\(models * hours) batches sent in \(loaded); RSS \(String(format: "%.1f", residentMegabytes(pid: pid))) MB"
        )

        let sample = try await sendRetrying(
            .windows(.with { $0.modelID = names[0] }), through: client, what: "windows")
        let series = Set(sample.windows.windows.map { "\($0.segmentColumn)=\($0.segmentValue)" }).count
        print("\(names[0]): \(sample.windows.windows.count) closed windows in \(series) series")

        print("after the load   t s  RSS MB  data dir MB  (sst MB, wal MB)")
        let settled = ContinuousClock.now
        while ContinuousClock.now - settled < .seconds(settleSeconds) {
            try await Task.sleep(for: .seconds(5))
            let disk = directoryMegabytes(cluster.dataDirectory())
            print(
                String(
                    format: "               %5.0f  %6.1f  %11.1f  (%6.1f, %6.1f)",
                    (ContinuousClock.now - settled) / .seconds(1),
                    residentMegabytes(pid: pid), disk.total, disk.tables, disk.logs))
        }

        // Every model gets one more batch, `--concurrency` at a time: models idle for the node's
        // --park-idle-models-after-s are loaded back from RocksDB first.
        let recorder = Recorder()
        let woke = ContinuousClock.now
        try await forEachConcurrently(models, concurrency: concurrency) { index, _ in
            let batch = shape.batch(
                model: names[index], rows: rows, eventTimes: spreadEventTimes(rows: rows, endMs: nowMs, spanMs: 1_000))
            let sent = ContinuousClock.now
            try await sendRetrying(
                Infranaut_V1_Request.encodedIngest(key: "m\(index)-again", batchBytes: try batch.serializedBytes()),
                through: client, what: "ingest")
            recorder.record(ContinuousClock.now - sent)
        }
        let latency = LatencySummary(recorder.latencies)
        print(
            String(
                format: "one more batch per model: %d batches in %.2f s, ack p50 %.2f ms, p99 %.2f ms; RSS %.1f MB",
                models, (ContinuousClock.now - woke) / .seconds(1), latency.milliseconds(at: 0.5),
                latency.milliseconds(at: 0.99), residentMegabytes(pid: pid)))
    }
}
