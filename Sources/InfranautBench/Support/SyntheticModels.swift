import Cluster
import Wire

/// The shape of the benches' telemetry: `features` numeric columns `feature_i` (uniform in
/// ±(i + 1)), and `segments` text columns `segment_j` with `segmentValues` values each, drawn
/// uniformly. The spec that monitors it declares them all and splits windows by the segment columns.
struct SyntheticModels {
    var features: Int
    var segments = 0
    var segmentValues = 5
    /// Rows carry a `score` column, and the spec makes the model a binary classifier predicting
    /// it (prediction ids, when the batch has them, keep the predictions for labels).
    var scores = false

    /// A batch of `rows` rows for `model`, with `eventTimes` (one per row) when given.
    func batch(model: String, rows: Int, eventTimes: [Int64]? = nil, reference: Bool = false)
        -> Infranaut_V1_TelemetryBatch
    {
        var generator = SystemRandomNumberGenerator()
        var batch = Infranaut_V1_TelemetryBatch()
        batch.modelID = model
        batch.rowCount = UInt32(rows)
        batch.reference = reference
        if let eventTimes { batch.eventTimeUnixMs = eventTimes }
        for f in 0..<features {
            batch.columns.append(
                .with {
                    $0.name = "feature_\(f)"
                    $0.doubles = .with {
                        $0.values = (0..<rows).map { _ in Double.random(in: -1...1, using: &generator) * Double(f + 1) }
                    }
                })
        }
        if scores {
            batch.columns.append(
                .with {
                    $0.name = "score"
                    $0.doubles = .with {
                        $0.values = (0..<rows).map { _ in Double.random(in: 0..<1, using: &generator) }
                    }
                })
        }
        for s in 0..<segments {
            batch.columns.append(
                .with {
                    $0.name = "segment_\(s)"
                    $0.strings = .with {
                        $0.values = (0..<rows).map { _ in "v\(Int.random(in: 0..<segmentValues, using: &generator))" }
                    }
                })
        }
        return batch
    }

    /// The spec of `model`: every column declared, the segment columns splitting the windows,
    /// tumbling windows of `windowMs` with no lateness, the reference from an upload, and
    /// `retentionMs` of results (0: the default, 90 days).
    func spec(model: String, windowMs: UInt64, retentionMs: UInt64 = 0) -> Infranaut_V1_ModelSpec {
        .with {
            $0.name = model
            $0.features =
                (0..<features).map { f in
                    .with {
                        $0.name = "feature_\(f)"
                        $0.type = .numeric
                    }
                }
                + (0..<segments).map { s in
                    .with {
                        $0.name = "segment_\(s)"
                        $0.type = .categorical
                    }
                }
            $0.segments = (0..<segments).map { "segment_\($0)" }
            $0.window = .with {
                $0.sizeMs = windowMs
                $0.latenessMs = 0
            }
            $0.reference = .with { $0.policy = .upload }
            if retentionMs > 0 { $0.retention = .with { $0.windowsMs = retentionMs } }
            if scores {
                $0.task = .binaryClassification
                $0.columns = .with { $0.prediction = "score" }
            }
        }
    }

    /// Applies the spec of every model in `models` and uploads a reference of `referenceRows` rows
    /// for each (the default version), `concurrency` requests at a time through `client`.
    func applySpecs(
        _ models: [String], windowMs: UInt64, retentionMs: UInt64 = 0, referenceRows: Int,
        through client: RequestClient,
        concurrency: Int = 16
    ) async throws {
        try await forEachConcurrently(models.count, concurrency: concurrency) { index, _ in
            let model = models[index]
            try await sendRetrying(
                .applyModel(.with { $0.spec = spec(model: model, windowMs: windowMs, retentionMs: retentionMs) }),
                through: client, what: "apply_model \(model)")
            let reference = batch(model: model, rows: referenceRows, reference: true)
            try await sendRetrying(
                Infranaut_V1_Request.encodedIngest(
                    key: "reference-\(model)", batchBytes: try reference.serializedBytes()),
                through: client, what: "reference upload for \(model)")
        }
    }
}

/// `rows` event times spread evenly over `[endMs - spanMs, endMs)`.
func spreadEventTimes(rows: Int, endMs: Int64, spanMs: Int64) -> [Int64] {
    (0..<rows).map { endMs - spanMs + Int64($0) * spanMs / Int64(max(1, rows)) }
}
