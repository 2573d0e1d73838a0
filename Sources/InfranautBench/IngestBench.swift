import ArgumentParser
import Cluster
import Foundation
import Wire

/// Starts a real node process (the release `infranaut` binary) on a fresh data dir and drives it
/// over loopback TCP with durable-ack ingest batches from concurrent senders.
///
/// With `--segments` and `--event-times` the batches carry what a monitored model's do (segment
/// columns, event times near now); with `--spec` as well, every model first gets a spec declaring
/// them (windows of `--window-seconds`, lateness 0) and an uploaded reference, outside the timed
/// part, so the two runs differ only by the spec (docs/benchmarks.md, issue 11).
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

    @Option(help: "Text columns per row with 5 values each (the spec's segment columns).")
    var segments = 0

    @Flag(
        name: .customLong("event-times"),
        help: "Rows carry event times within the last second (bodies re-encoded every second).")
    var eventTimes = false

    @Flag(help: "Apply a spec to every model (all columns declared, segments, reference upload) before the load.")
    var spec = false

    @Option(name: .customLong("window-seconds"), help: "Window size of the spec.")
    var windowSeconds = 60

    @Option(name: .customLong("reference-rows"), help: "Rows of each model's uploaded reference (with --spec).")
    var referenceRows = 1_000

    @Flag(
        help:
            "Rows carry a score and a prediction id (new every second) and the spec names a binary task, so shards keep every prediction for its label (with --spec and --event-times)."
    )
    var predictions = false

    @Flag(
        help:
            "After the load, send a label for every prediction kept (batches of --rows, --concurrency at a time) and report labels joined per second (with --predictions)."
    )
    var labels = false

    func validate() throws {
        if predictions && !(spec && eventTimes) {
            throw ValidationError("--predictions needs --spec and --event-times")
        }
        if labels && !predictions { throw ValidationError("--labels needs --predictions") }
    }

    func run() async throws {
        let cluster = try await BenchNodes.launch(binary: binary, nodes: nodes, prefix: "bench")
        defer { cluster.stop() }
        let launchedNodes = cluster.nodes
        let pid = cluster.pid
        print(
            "\(launchedNodes.count) node(s), first pid \(pid) at \(launchedNodes[0].client); \(concurrency) senders, \(rows) rows x \(features) features + \(segments) segment columns per batch, \(models) models, event times \(eventTimes ? "now" : "none"), spec \(spec ? "\(windowSeconds) s windows" : "none")\(predictions ? ", predictions kept by id" : "")"
        )
        let shape = SyntheticModels(features: features, segments: segments, scores: predictions)
        let names = (0..<models).map { "bench-model-\($0)" }
        let clients = try launchedNodes.map { try RequestClient(dial: $0.client) }
        defer { clients.forEach { $0.close() } }
        if spec {
            let applied = ContinuousClock.now
            try await shape.applySpecs(
                names, windowMs: UInt64(windowSeconds) * 1_000, referenceRows: referenceRows, through: clients[0])
            print("specs and references of \(models) models applied in \(ContinuousClock.now - applied)")
        }

        // One batch per model, encoded once; with event times, re-encoded every second with new ones.
        let rows = self.rows
        let batches = names.map { shape.batch(model: $0, rows: rows) }
        let withIDs = predictions
        // The seconds whose ids were sent (each second's batches carry ids "<second>-<row>").
        let idSeconds = Locked([Int64]())
        let encode: @Sendable (_ nowMs: Int64?) throws -> [[UInt8]] = { nowMs in
            try batches.map { batch in
                guard let nowMs else { return try batch.serializedBytes() }
                var dated = batch
                dated.eventTimeUnixMs = spreadEventTimes(rows: rows, endMs: nowMs, spanMs: 1_000)
                // Ids new every second (a body sent twice within one second sends its ids again).
                if withIDs { dated.predictionIds = (0..<rows).map { "\(nowMs)-\($0)" } }
                return try dated.serializedBytes()
            }
        }
        let firstSecond = unixMilliseconds()
        if withIDs { idSeconds.withLock { $0.append(firstSecond) } }
        let bodies = Locked(try encode(eventTimes ? firstSecond : nil))
        let encodeTime = Locked(Duration.zero)
        let concurrency = self.concurrency
        let recorder = Recorder()
        let start = ContinuousClock.now
        let warmupEnd = start + .seconds(3)
        let end = warmupEnd + .seconds(duration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            if eventTimes {
                group.addTask {
                    while ContinuousClock.now < end {
                        try await Task.sleep(for: .seconds(1))
                        let began = ContinuousClock.now
                        let second = unixMilliseconds()
                        if withIDs { idSeconds.withLock { $0.append(second) } }
                        let fresh = try encode(second)
                        bodies.withLock { $0 = fresh }
                        encodeTime.withLock { $0 += ContinuousClock.now - began }
                    }
                }
            }
            for sender in 0..<concurrency {
                group.addTask {
                    var sequence = 0
                    while ContinuousClock.now < end {
                        let model = (sender + sequence * concurrency) % names.count
                        let body = bodies.withLock { $0[model] }
                        let request = Infranaut_V1_Request.encodedIngest(
                            key: "s\(sender)-\(sequence)", batchBytes: body)
                        sequence += 1
                        let sent = ContinuousClock.now
                        // Retryable refusals count in the latency.
                        try await sendRetrying(
                            request, through: clients[sender % clients.count], what: "ingest", attempts: 100)
                        if sent >= warmupEnd { recorder.record(ContinuousClock.now - sent) }
                    }
                }
            }
            try await group.waitForAll()
        }
        let measured = recorder.latencies
        let rowsPerSecond = Double(measured.count) / Double(duration) * Double(rows)
        let latency = LatencySummary(measured)
        let rss = residentMegabytes(pid: pid)
        try await Task.sleep(for: .seconds(12))  // one checkpoint interval later, load stopped
        let idleRSS = residentMegabytes(pid: pid)
        print(
            String(
                format: "measured %d s: %d batches, %.0f rows/s, %.2f M feature values/s", duration, measured.count,
                rowsPerSecond, rowsPerSecond * Double(features) / 1e6))
        print(
            String(
                format: "ack latency: p50 %.2f ms, p99 %.2f ms, max %.2f ms", latency.milliseconds(at: 0.5),
                latency.milliseconds(at: 0.99), latency.milliseconds(at: 1.0)))
        print(
            String(
                format:
                    "node resident memory (%d models x %d features): %.1f MB at the end of the load, %.1f MB 12 s later",
                models, features, rss, idleRSS))
        if eventTimes {
            print("client time re-encoding event times: \(encodeTime.withLock { $0 }) in total")
        }
        if labels {
            // One label batch per model and second: every id sent in that second, label 1 or 0.
            // Encoded before the clock starts: the client shares the machine's cores with the node,
            // and what is measured is the node's joining.
            let seconds = idSeconds.withLock { $0 }
            let labelColumn = Infranaut_V1_Column.with {
                $0.name = "y"
                $0.doubles = .with { $0.values = (0..<rows).map { Double($0 % 2) } }
            }
            var encoded: [[UInt8]] = []
            for model in names {
                for second in seconds {
                    let batch = Infranaut_V1_TelemetryBatch.with {
                        $0.modelID = model
                        $0.labels = true
                        $0.rowCount = UInt32(rows)
                        $0.predictionIds = (0..<rows).map { "\(second)-\($0)" }
                        $0.labelColumn = "y"
                        $0.columns = [labelColumn]
                    }
                    encoded.append(
                        Infranaut_V1_Request.encodedIngest(
                            key: "l-\(model)-\(second)", batchBytes: try batch.serializedBytes()))
                }
            }
            let work = Locked(encoded)
            let total = Locked((joined: UInt64(0), other: UInt64(0)))
            let began = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in 0..<concurrency {
                    group.addTask {
                        while let request = work.withLock({ $0.popLast() }) {
                            let reply = try await sendRetrying(
                                request, through: clients[sender % clients.count], what: "labels", attempts: 100)
                            let outcome = reply.ingest.labels
                            total.withLock {
                                $0.joined += outcome.joined
                                $0.other += outcome.unknownIds + outcome.alreadyLabelled + outcome.missing
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let elapsed = ContinuousClock.now - began
            let (joined, other) = total.withLock { $0 }
            let seconds_ = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(
                String(
                    format:
                        "labels: %llu joined, %llu not (unknown or already labelled) in %.1f s: %.0f labels joined/s",
                    joined, other, seconds_, Double(joined) / seconds_))
        }
        if spec {
            let sample = try await sendRetrying(
                .windows(.with { $0.modelID = names[0] }), through: clients[0], what: "windows")
            let late = sample.windows.windows.reduce(0) { $0 + $1.lateRows }
            print(
                "\(names[0]): \(sample.windows.windows.count) closed windows (whole model and segments), \(late) late rows"
            )
        }
    }
}

/// Milliseconds since the Unix epoch, by the wall clock.
func unixMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
