import Foundation
public import Monitoring
public import Wire

/// Everything a shard knows about one model: row and batch counts and one ``FeatureState`` per
/// feature. Changed only by applying normalised ops, in sequence order.
public struct ModelState: Sendable {
    public let modelID: String
    public private(set) var rows: UInt64 = 0
    public private(set) var batches: UInt64 = 0
    public private(set) var features: [String: FeatureState] = [:]
    /// Feature names in the order they were first seen.
    public private(set) var featureOrder: [String] = []
    /// Feature names sorted, for status pages (a cursor is a name in this order).
    public private(set) var sortedNames: [String] = []
    public private(set) var lastEventTimeUnixMs: Int64 = 0
    public private(set) var predictionColumn = ""
    public private(set) var labelColumn = ""
    /// Missing values of features seen so far only in columns without any value (no type yet).
    public private(set) var untypedMissing: [String: UInt64] = [:]
    /// The applied spec (nil until one is applied), its generation (one per change) and when it
    /// was last applied, by the op's acceptance time.
    public private(set) var spec: Infranaut_V1_ModelSpec?
    public private(set) var generation: UInt64 = 0
    public private(set) var specUpdatedUnixMs: Int64 = 0
    /// Set while the model is deleted: when its state goes (an apply before then undoes it).
    public private(set) var purgeAfterUnixMs: Int64 = 0
    /// Uploaded reference profiles, by model version.
    public private(set) var references: [String: ReferenceState] = [:]
    /// The model's windows, once a spec declares them.
    var monitor: ModelMonitor?
    /// The largest acceptance time of any op applied to the model: which prediction epochs are
    /// live (``PredictionEpochs``).
    public private(set) var newestOpUnixMs: Int64 = 0

    public init(modelID: String) { self.modelID = modelID }

    /// The established type of each feature.
    public var schema: [String: Infranaut_V1_FeatureType] { features.mapValues(\.type) }

    /// Applies one normalised op. Returns the predictions to keep for their labels (see
    /// ``ModelMonitor/add(_:mismatchRows:processingTimeMs:)``).
    @discardableResult
    public mutating func apply(_ op: Infranaut_V1_StoredOp) -> [(id: String, record: Infranaut_V1_PredictionRecord)] {
        noteOp(acceptedUnixMs: op.acceptedUnixMs)
        let batch = op.batch
        if batch.reference {
            let roles = roleColumns(spec, batch: batch)
            references[batch.version, default: ReferenceState(version: batch.version)].apply(
                op, predictionColumn: roles.prediction, labelColumn: roles.label)
            if let reference = references[batch.version] {
                monitor?.setUploadedReference(
                    reference.profile(predictionColumn: roles.prediction, labelColumn: roles.label),
                    version: batch.version)
            }
            return []
        }
        rows &+= UInt64(batch.rowCount)
        batches &+= 1
        if let newest = batch.eventTimeUnixMs.max(), newest > lastEventTimeUnixMs { lastEventTimeUnixMs = newest }
        if !batch.predictionColumn.isEmpty { predictionColumn = batch.predictionColumn }
        if !batch.labelColumn.isEmpty { labelColumn = batch.labelColumn }
        for (index, column) in batch.columns.enumerated() {
            let mismatches = index < op.typeMismatches.count ? op.typeMismatches[index] : 0
            if features[column.name] == nil {
                if column.isAllMissing {
                    untypedMissing[column.name, default: 0] += UInt64(batch.rowCount)
                    continue
                }
                var feature = FeatureState(name: column.name, type: column.featureType)
                if let earlier = untypedMissing.removeValue(forKey: column.name) { feature.addMissing(earlier) }
                features[column.name] = feature
                featureOrder.append(column.name)
                sortedNames.insert(column.name, at: Self.firstIndex(after: column.name, in: sortedNames))
            }
            features[column.name]!.apply(column, mismatches: mismatches)
        }
        return monitor?.add(batch, mismatchRows: op.typeMismatchRows, processingTimeMs: op.acceptedUnixMs) ?? []
    }

    /// The prediction and label columns: the spec's, else the batch's (or the model's, without one).
    private func roleColumns(_ spec: Infranaut_V1_ModelSpec?, batch: Infranaut_V1_TelemetryBatch? = nil)
        -> (prediction: String, label: String)
    {
        func pick(_ declared: String?, _ sent: String?, _ seen: String) -> String {
            if let declared, !declared.isEmpty { return declared }
            if let sent, !sent.isEmpty { return sent }
            return seen
        }
        return (
            pick(spec?.columns.prediction, batch?.predictionColumn, predictionColumn),
            pick(spec?.columns.label, batch?.labelColumn, labelColumn)
        )
    }

    /// Counts an op accepted at `acceptedUnixMs` as applied to the model (its epochs' clock).
    mutating func noteOp(acceptedUnixMs: Int64) {
        if acceptedUnixMs > newestOpUnixMs { newestOpUnixMs = acceptedUnixMs }
    }

    /// Joins a label to a kept prediction (see ``ModelMonitor/joinLabel(_:actual:)``).
    mutating func joinLabel(_ record: Infranaut_V1_PredictionRecord, actual: PerformanceState.Cell) -> Bool {
        monitor?.joinLabel(record, actual: actual) ?? false
    }

    /// Applies a spec change: a new spec (a new generation, and undoing a deletion) or a delete.
    public mutating func apply(spec change: Infranaut_V1_ModelSpecOp, acceptedUnixMs: Int64) {
        noteOp(acceptedUnixMs: acceptedUnixMs)
        if change.delete {
            if purgeAfterUnixMs == 0 { purgeAfterUnixMs = acceptedUnixMs + Int64(change.purgeAfterMs) }
            // A deleted model raises nothing more: its active alerts resolve now, so coordinators
            // do not repeat them until the purge (and its traffic rule stops asking for ticks).
            monitor?.alerts.keep(rules: [], nowMs: acceptedUnixMs)
            return
        }
        spec = change.spec
        generation += 1
        specUpdatedUnixMs = acceptedUnixMs
        purgeAfterUnixMs = 0
        // New settings close the old windows first (their results are kept); the same settings
        // keep the open windows and evaluate them with the new rules from now on.
        var previous = monitor
        if let old = previous, old.windows.settings != ModelMonitor.settings(change.spec) {
            previous!.tick(processingTimeMs: .max, nowMs: acceptedUnixMs)
        }
        var next = ModelMonitor(spec: change.spec, carrying: previous?.windows)
        if var previous {
            next.restore(previous.takeForCheckpoint())
            next.inherit(latest: previous.latest)
            next.rejected = previous.rejected
            // Alerts live on across spec changes; those of rules the new spec dropped resolve.
            next.alerts = previous.alerts
            next.alerts.keep(rules: next.rules, nowMs: acceptedUnixMs)
        }
        // In a fixed order: the window logic keeps the most recently set references, and every
        // replica must keep the same ones.
        let roles = roleColumns(change.spec)
        for version in references.keys.sorted() {
            next.setUploadedReference(
                references[version]!.profile(predictionColumn: roles.prediction, labelColumn: roles.label),
                version: version)
        }
        monitor = next
    }

    /// When a tick next has work for this model (none once it is deleted).
    var tickDueAtMs: Int64? { purgeAfterUnixMs == 0 ? monitor?.tickDueAtMs : nil }

    /// Closes the windows idle for window size + lateness by `processingTimeMs` (a tick op's time).
    mutating func tickWindows(processingTimeMs: Int64) {
        noteOp(acceptedUnixMs: processingTimeMs)
        monitor?.tickOp(nowMs: processingTimeMs)
    }

    /// One page of the model's status: counts, and up to `limit` features sorted by name that come
    /// after `after` ("" for the first page), with the cursor of the next page ("" after the last).
    public func statusPage(shard: Int, after: String, limit: Int) -> Infranaut_V1_StatusResponse {
        let start = after.isEmpty ? 0 : Self.firstIndex(after: after, in: sortedNames)
        let end = min(sortedNames.count, start + max(0, limit))
        var model = header(shard: shard)
        model.features = sortedNames[start..<end].compactMap { features[$0]?.status }
        return .with {
            $0.status = .ok
            $0.model = model
            $0.featuresTotal = UInt64(features.count)
            $0.nextFeaturesAfter = end < sortedNames.count && end > start ? sortedNames[end - 1] : ""
        }
    }

    /// The index of the first name in `sorted` that sorts after `name`.
    static func firstIndex(after name: String, in sorted: [String]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] <= name { low = middle + 1 } else { high = middle }
        }
        return low
    }

    private func header(shard: Int) -> Infranaut_V1_ModelStatus {
        .with {
            $0.modelID = modelID
            $0.rows = rows
            $0.batches = batches
            $0.shard = UInt32(shard)
            $0.lastEventTimeUnixMs = lastEventTimeUnixMs
            $0.predictionColumn = predictionColumn
            $0.labelColumn = labelColumn
            $0.referenceRows = references.mapValues(\.rows)
            $0.specGeneration = generation
            if let latest = monitor?.latest {
                $0.latestWindows = latest.keys.sorted().compactMap { latest[$0]?.wire }
            }
        }
    }

    /// The whole status, every feature in the order first seen (in-process readers; replies to
    /// clients are paged with ``statusPage(shard:after:limit:)``).
    public func status(shard: Int) -> Infranaut_V1_ModelStatus {
        var model = header(shard: shard)
        model.features = featureOrder.compactMap { features[$0]?.status }
        return model
    }

    public var snapshot: Infranaut_V1_ModelSnapshot {
        .with {
            $0.modelID = modelID
            $0.rows = rows
            $0.batches = batches
            $0.lastEventTimeUnixMs = lastEventTimeUnixMs
            $0.predictionColumn = predictionColumn
            $0.labelColumn = labelColumn
            $0.features = featureOrder.compactMap { features[$0]?.snapshot }
            $0.untypedMissing = untypedMissing
            if let spec { $0.spec = spec }
            $0.generation = generation
            $0.specUpdatedUnixMs = specUpdatedUnixMs
            $0.purgeAfterUnixMs = purgeAfterUnixMs
            $0.newestOpUnixMs = newestOpUnixMs
            $0.references = references.keys.sorted().compactMap { references[$0]?.snapshot }
            if let monitor {
                $0.windows = Data(monitor.windows.serialized())
                $0.latestWindows = monitor.latest.keys.sorted().compactMap {
                    monitor.latest[$0].map { Data($0.serialized()) }
                }
                $0.rejectedFutureRows = monitor.rejected.future
                $0.rejectedWindowLimitRows = monitor.rejected.windowLimit
                $0.alerts = Data(monitor.alerts.serialized())
            }
        }
    }

    public init(snapshot: Infranaut_V1_ModelSnapshot) throws(ProfileDecodingError) {
        modelID = snapshot.modelID
        rows = snapshot.rows
        batches = snapshot.batches
        lastEventTimeUnixMs = snapshot.lastEventTimeUnixMs
        predictionColumn = snapshot.predictionColumn
        labelColumn = snapshot.labelColumn
        for feature in snapshot.features {
            features[feature.name] = try FeatureState(snapshot: feature)
            featureOrder.append(feature.name)
        }
        sortedNames = featureOrder.sorted()
        untypedMissing = snapshot.untypedMissing
        spec = snapshot.hasSpec ? snapshot.spec : nil
        generation = snapshot.generation
        specUpdatedUnixMs = snapshot.specUpdatedUnixMs
        purgeAfterUnixMs = snapshot.purgeAfterUnixMs
        newestOpUnixMs = snapshot.newestOpUnixMs
        for reference in snapshot.references {
            references[reference.version] = try ReferenceState(snapshot: reference)
        }
        if let spec {
            monitor = try ModelMonitor(
                spec: spec, restoring: Array(snapshot.windows), latest: snapshot.latestWindows.map { Array($0) },
                alerts: Array(snapshot.alerts))
            monitor!.rejected.future = snapshot.rejectedFutureRows
            monitor!.rejected.windowLimit = snapshot.rejectedWindowLimitRows
        }
    }
}

/// A model version's reference: the profile of every feature over the uploaded reference rows, and
/// the rows' event-time span. Built like the model's own profiles, from normalised batches, so it
/// costs no second pass and merges.
public struct ReferenceState: Sendable {
    public let version: String
    public private(set) var rows: UInt64 = 0
    public private(set) var features: [String: FeatureState] = [:]
    public private(set) var featureOrder: [String] = []
    public private(set) var firstEventUnixMs: Int64 = 0
    public private(set) var lastEventUnixMs: Int64 = 0
    /// The scores of rows that carried a binary label (1/0, true/false) and a score in [0, 1],
    /// positives and negatives per bin: the calibration of estimated performance. Read from the
    /// prediction and label columns each batch was applied with (the spec's, else the batch's).
    public private(set) var labelled: ScoreHistogram?
    /// The label column the rows were read with, last named (left out of the reference's features
    /// whatever names a later spec gives).
    public private(set) var labelColumn = ""

    public init(version: String) { self.version = version }

    mutating func apply(_ op: Infranaut_V1_StoredOp, predictionColumn: String, labelColumn: String) {
        let batch = op.batch
        if !labelColumn.isEmpty { self.labelColumn = labelColumn }
        addLabelledScores(batch, predictionColumn: predictionColumn, labelColumn: labelColumn)
        rows &+= UInt64(batch.rowCount)
        if let first = batch.eventTimeUnixMs.min(), let last = batch.eventTimeUnixMs.max() {
            firstEventUnixMs = firstEventUnixMs == 0 ? first : min(firstEventUnixMs, first)
            lastEventUnixMs = max(lastEventUnixMs, last)
        }
        for (index, column) in batch.columns.enumerated() where !column.isAllMissing || features[column.name] != nil {
            if features[column.name] == nil {
                features[column.name] = FeatureState(name: column.name, type: column.featureType)
                featureOrder.append(column.name)
            }
            let mismatches = index < op.typeMismatches.count ? op.typeMismatches[index] : 0
            features[column.name]!.apply(column, mismatches: mismatches)
        }
    }

    var snapshot: Infranaut_V1_ReferenceSnapshot {
        .with {
            $0.version = version
            $0.rows = rows
            $0.features = featureOrder.compactMap { features[$0]?.snapshot }
            $0.firstEventUnixMs = firstEventUnixMs
            $0.lastEventUnixMs = lastEventUnixMs
            if let labelled { $0.labelledScores = Data(labelled.serialized()) }
            $0.labelColumn = labelColumn
        }
    }

    private mutating func addLabelledScores(
        _ batch: Infranaut_V1_TelemetryBatch, predictionColumn: String, labelColumn: String
    ) {
        let rows = Int(batch.rowCount)
        guard !predictionColumn.isEmpty, !labelColumn.isEmpty,
            let p = batch.columns.first(where: { $0.name == predictionColumn }).flatMap(ModelMonitor.windowColumn),
            let l = batch.columns.first(where: { $0.name == labelColumn }).flatMap(ModelMonitor.windowColumn),
            p.fits(rowCount: rows), l.fits(rowCount: rows)
        else { return }
        for (score, label) in zip(p.performanceCells(rowCount: rows), l.performanceCells(rowCount: rows)) {
            guard let s = score?.number, s >= 0, s <= 1, let y = label?.binaryLabel else { continue }
            if labelled == nil { labelled = ScoreHistogram() }
            labelled!.add(score: s, positive: y == 1)
        }
    }

    init(snapshot: Infranaut_V1_ReferenceSnapshot) throws(ProfileDecodingError) {
        version = snapshot.version
        rows = snapshot.rows
        firstEventUnixMs = snapshot.firstEventUnixMs
        lastEventUnixMs = snapshot.lastEventUnixMs
        if !snapshot.labelledScores.isEmpty { labelled = try ScoreHistogram(serialized: snapshot.labelledScores) }
        labelColumn = snapshot.labelColumn
        for feature in snapshot.features {
            features[feature.name] = try FeatureState(snapshot: feature)
            featureOrder.append(feature.name)
        }
    }
}
