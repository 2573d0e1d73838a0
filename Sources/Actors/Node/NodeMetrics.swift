import Foundation
import Prometheus
import Synchronization
import Wire

/// A node's metrics in the Prometheus text format (docs/operations.md, "Metrics"). Counters and
/// the ack-latency histogram move as client requests are answered; the gauges (members, shards,
/// events, alerts, memory) are read from the node's parts when `/metrics` is scraped.
final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let ackLatency: DurationHistogram
    private let ingestRows: Counter
    private let ingestBytes: Counter
    private let syncLatency: DurationHistogram
    private let checkpointLatency: DurationHistogram

    static let requestsHelp = "Client requests answered, by request and outcome (the status code)."

    /// A metric's whole name (`infranaut_…`) and its help line.
    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    init() {
        ackLatency = registry.makeDurationHistogram(
            descriptor: Self.named(
                "infranaut_ingest_ack_seconds",
                "Time from an ingest request's arrival on the client listener to its answer."),
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .milliseconds(2_500), .seconds(5), .seconds(10), .seconds(30),
            ])
        syncLatency = registry.makeDurationHistogram(
            descriptor: Self.named(
                "infranaut_wal_sync_seconds",
                "Duration of each synced WAL write (a group of batches): the fsync latency."),
            buckets: [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                .milliseconds(250), .seconds(1),
            ])
        checkpointLatency = registry.makeDurationHistogram(
            descriptor: Self.named("infranaut_checkpoint_seconds", "Duration of each shard checkpoint."),
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
                .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30),
            ])
        ingestRows = registry.makeCounter(
            descriptor: Self.named(
                "infranaut_ingest_rows_total", "Rows of ingest requests acknowledged (replays not counted)."))
        ingestBytes = registry.makeCounter(
            descriptor: Self.named(
                "infranaut_ingest_bytes_total", "Bytes of ingest requests acknowledged (replays not counted)."))
    }

    static let peerHelp = "Requests from peers and admin commands (sealed frames) answered, by request and outcome."
    static let forwardHelp =
        "Requests this node forwarded to a shard's leader, by outcome (refused: the peer refused the frame; no_answer: none came)."

    /// A peer's request answered with `response`.
    func peer(_ request: Infranaut_V1_Request, _ response: Infranaut_V1_Response) {
        registry.makeCounter(
            descriptor: Self.named("infranaut_peer_requests_total", Self.peerHelp),
            labels: [("request", request.bodyName), ("outcome", Self.outcomeName(response.outcome.code))]
        ).increment()
    }

    /// A forward to a leader that ended with `outcome`.
    func forward(_ outcome: String) {
        registry.makeCounter(
            descriptor: Self.named("infranaut_forwards_total", Self.forwardHelp), labels: [("outcome", outcome)]
        ).increment()
    }

    func recordSync(_ took: Duration) { syncLatency.record(took) }
    func recordCheckpoint(_ took: Duration) { checkpointLatency.record(took) }

    /// A client request answered with `response` after `elapsed`; `bytes`, its frame's size.
    func client(_ request: Infranaut_V1_Request?, _ response: Infranaut_V1_Response, elapsed: Duration, bytes: Int = 0)
    {
        let outcome = response.outcome.code
        let name = request?.bodyName ?? "malformed"
        registry.makeCounter(
            descriptor: Self.named("infranaut_client_requests_total", Self.requestsHelp),
            labels: [("request", name), ("outcome", Self.outcomeName(outcome))]
        ).increment()
        guard case .ingest = request?.body else { return }
        ackLatency.record(elapsed)
        if outcome == .ok, case .ingest(let answer) = response.body, !answer.replayed {
            ingestRows.increment(by: Int64(clamping: answer.rowsAccepted))
            ingestBytes.increment(by: Int64(bytes))
        }
    }

    static func outcomeName(_ code: Infranaut_V1_StatusCode) -> String {
        switch code {
        case .ok: "ok"
        case .invalidArgument: "invalid_argument"
        case .notFound: "not_found"
        case .tooLarge: "too_large"
        case .unavailable: "unavailable"
        case .internal: "internal"
        case .deadlineExceeded: "deadline_exceeded"
        case .permissionDenied: "permission_denied"
        case .resourceExhausted: "resource_exhausted"
        default: "unknown"
        }
    }

    func gauge(_ name: String, _ value: Double, labels: [(String, String)] = [], help: String) {
        registry.makeGauge(descriptor: Self.named(name, help), labels: labels).set(value)
    }

    /// Totals kept elsewhere (the WAL writer's), as counters: each scrape adds what grew since.
    private let totals = Mutex<[String: Int64]>([:])

    func advance(_ name: String, to total: Int64, help: String) {
        let grown = totals.withLock { seen -> Int64 in
            defer { seen[name] = max(seen[name] ?? 0, total) }
            return max(0, total - (seen[name] ?? 0))
        }
        let counter = registry.makeCounter(descriptor: Self.named(name, help))
        if grown > 0 { counter.increment(by: grown) }
    }

    /// Per-model series are kept for this many models per node, those with the most rows: each
    /// series costs Prometheus memory, and a node may hold 10,000 models.
    static let maxModelSeries = 50

    /// The models whose series are registered now.
    private let modelSeries = Mutex<Set<String>>([])

    static let modelRowsHelp =
        "Rows of a model (the per-model series are kept for the 50 models with the most rows on each node)."
    static let modelDriftHelp = "Drift share of a model's newest closed window (resident models among the 50)."
    static let modelFiringHelp = "Firing alerts of a model (among the 50)."

    /// Sets the per-model series to `models` (the top ones by rows) and drops the series of models
    /// that left the top.
    func setModels(_ models: [(model: String, rows: UInt64, driftShare: Double?, firing: Int)]) {
        let kept = models.sorted { ($0.rows, $1.model) > ($1.rows, $0.model) }.prefix(Self.maxModelSeries)
        let names = Set(kept.map(\.model))
        let gone = modelSeries.withLock { registered -> Set<String> in
            defer { registered = names }
            return registered.subtracting(names)
        }
        for model in gone {
            registry.unregisterGauge(
                registry.makeGauge(
                    descriptor: Self.named("infranaut_model_rows", Self.modelRowsHelp), labels: [("model", model)]))
            registry.unregisterGauge(
                registry.makeGauge(
                    descriptor: Self.named("infranaut_model_drift_share", Self.modelDriftHelp),
                    labels: [("model", model)]))
            registry.unregisterGauge(
                registry.makeGauge(
                    descriptor: Self.named("infranaut_model_alerts_firing", Self.modelFiringHelp),
                    labels: [("model", model)]))
        }
        for entry in kept {
            gauge(
                "infranaut_model_rows", Double(entry.rows), labels: [("model", entry.model)], help: Self.modelRowsHelp)
            if let drift = entry.driftShare {
                gauge("infranaut_model_drift_share", drift, labels: [("model", entry.model)], help: Self.modelDriftHelp)
            }
            gauge(
                "infranaut_model_alerts_firing", Double(entry.firing), labels: [("model", entry.model)],
                help: Self.modelFiringHelp)
        }
    }

    /// The text `/metrics` answers.
    func text() -> [UInt8] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return bytes
    }

    /// The process's resident memory, from /proc/self/statm (0 where there is none).
    static func residentBytes() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Double(fields[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE)))
    }
}
