import Monitoring
import Wire

/// One model's windows, as its spec declares them (docs/windows.md): the open windows
/// (Monitoring's ``ModelWindows``, a pure value fed from the op log), the results of windows
/// closed since the shard's last checkpoint, and late rows counted for results already stored.
///
/// Everything here changes only by applying ops, with the ops' own acceptance times as processing
/// time, so every replica holds the same windows and computes the same results at the same index.
/// Results are written to the `windows` family by the checkpoint that also writes the model (with
/// its open windows), so a crash re-derives exactly the results the log after the checkpoint makes.
struct ModelMonitor: Sendable {
    private(set) var windows: ModelWindows
    let config: MonitorConfig
    /// Columns that play a role (prediction, label, version, id, timestamp): not features.
    let roles: Set<String>
    let versionColumn: String
    let predictionColumn: String
    let labelColumn: String
    /// Declared features and segment columns (empty: no feature declared, profile every column).
    let profiled: Set<String>
    /// Versions whose newest closed window is kept for status, at most.
    static let maxLatestVersions = 16
    /// Closed since the last checkpoint, serialized at close (see ``ClosedResult``).
    private(set) var pending: [WindowKey: ClosedResult] = [:]
    /// Late rows for results the last checkpoint already stored.
    private(set) var lateStored: [WindowKey: UInt64] = [:]
    /// Labels joined since the last checkpoint to predictions of windows it already stored: their
    /// pairs, per window, merged into the stored results by the next checkpoint.
    private(set) var lateLabels: [WindowKey: PerformanceState] = [:]
    /// Which prediction epochs are live (from the spec's retention).
    let epochs: PredictionEpochs
    /// The newest closed whole-model window of each version, for `status`.
    private(set) var latest: [String: WindowResult] = [:]
    /// The model's id (the spec's name): part of each alert's fingerprint.
    let model: String
    /// The spec's alert rules and the defaults it keeps (docs/alerting.md).
    let rules: [AlertRule]
    /// The alerts the rules raised, judged as windows close (in the model's checkpoint).
    var alerts = AlertBook()

    /// A monitor for `spec`, continuing `carried` windows when they have the spec's settings.
    init(spec: Infranaut_V1_ModelSpec, carrying carried: ModelWindows? = nil) {
        let settings = Self.settings(spec)
        windows = carried?.settings == settings ? carried! : ModelWindows(settings: settings)
        windows.performanceTask = Self.performanceTask(spec)
        config = Self.config(spec)
        roles = Set(
            [
                spec.columns.id, spec.columns.timestamp, spec.columns.prediction, spec.columns.label,
                spec.columns.version,
            ]
            .filter { !$0.isEmpty })
        versionColumn = spec.columns.version
        epochs = PredictionEpochs(spec: spec)
        predictionColumn = spec.columns.prediction
        labelColumn = spec.columns.label
        profiled = spec.features.isEmpty ? [] : Set(spec.features.map(\.name) + spec.segments)
        model = spec.name
        rules = Self.alertRules(spec)
    }

    /// The monitor a model snapshot holds: its open windows, newest results and alerts, serialized.
    init(spec: Infranaut_V1_ModelSpec, restoring state: [UInt8], latest stored: [[UInt8]], alerts: [UInt8])
        throws(ProfileDecodingError)
    {
        self.init(spec: spec, carrying: state.isEmpty ? nil : try ModelWindows(serialized: state))
        if !alerts.isEmpty { self.alerts = try AlertBook(serialized: alerts) }
        for bytes in stored {
            let result = try WindowResult(serialized: bytes)
            latest[result.key.version] = result
        }
    }

    /// What labelled rows count for: binary classifiers at the spec's threshold (0.5 by default),
    /// multiclass ones over the spec's classes (none listed: no performance), regression.
    static func performanceTask(_ spec: Infranaut_V1_ModelSpec) -> PerformanceTask? {
        switch spec.task {
        case .binaryClassification:
            .binary(threshold: spec.performance.threshold > 0 ? spec.performance.threshold : 0.5)
        case .multiclassClassification where spec.performance.classes.count >= 2:
            .multiclass(classes: spec.performance.classes)
        case .regression: .regression
        default: nil
        }
    }

    static func settings(_ spec: Infranaut_V1_ModelSpec) -> WindowSettings {
        let policy: ReferencePolicy =
            switch spec.reference.policy {
            case .firstRows: .firstRows(spec.reference.rows)
            case .previousWindow: .previousWindow
            default: .uploaded
            }
        return WindowSettings(
            sizeMs: Int64(max(1, spec.window.sizeMs)), latenessMs: Int64(spec.window.latenessMs),
            segmentColumns: spec.segments, reference: policy)
    }

    static func config(_ spec: Infranaut_V1_ModelSpec) -> MonitorConfig {
        func rule(_ method: String, _ threshold: Double) -> DriftRule {
            DriftRule(method: DriftMethod(rawValue: method) ?? .auto, threshold: threshold > 0 ? threshold : nil)
        }
        let features = spec.features.map { feature in
            Monitoring.FeatureSpec(
                name: feature.name,
                type: feature.type == .numeric ? .numeric : feature.type == .boolean ? .boolean : .categorical,
                range: feature.bounded ? feature.min...feature.max : nil,
                drift: spec.drift.perFeature[feature.name].map { rule($0.method, $0.threshold) })
        }
        var options = DriftOptions()
        if spec.drift.datasetShare > 0 { options.datasetDriftShare = spec.drift.datasetShare }
        let declared = Set(spec.features.map(\.name))
        return MonitorConfig(
            features: features,
            prediction: spec.columns.prediction.isEmpty ? nil : Monitoring.FeatureSpec(name: spec.columns.prediction),
            ignoredColumns: spec.segments.filter { !declared.contains($0) },
            drift: rule(spec.drift.method, spec.drift.threshold), options: options)
    }

    /// Feeds one applied batch of live traffic. Returns the predictions to keep for their labels:
    /// those of rows with an id and a prediction that counted in an open window, when the spec
    /// names a task (docs/performance.md).
    mutating func add(
        _ batch: Infranaut_V1_TelemetryBatch, mismatchRows: [Infranaut_V1_MismatchRows], processingTimeMs: Int64
    ) -> [(id: String, record: Infranaut_V1_PredictionRecord)] {
        guard let input = windowBatch(batch, mismatchRows: mismatchRows) else { return [] }
        let ids = batch.predictionIds
        let keeping = ids.count == input.rowCount && windows.performanceTask != nil && input.prediction != nil
        let update: WindowUpdate
        do throws(WindowBatch.ShapeError) {
            update = try windows.add(input, processingTimeMs: processingTimeMs, placing: keeping)
        } catch {
            // Validated batches always have matching lengths; a mismatch is skipped, never fatal.
            return []
        }
        record(update, nowMs: processingTimeMs)
        if windows.lastDataMs == processingTimeMs {
            alerts.trafficResumed(nowMs: processingTimeMs, rules: rules, model: model)
        }
        guard keeping else { return [] }
        let predicted = input.prediction!.performanceCells(rowCount: input.rowCount)
        // A row that carried its label already counted it: kept as labelled, so a label sent
        // later for its id is not counted again.
        let inline = input.label?.performanceCells(rowCount: input.rowCount)
        var kept: [(id: String, record: Infranaut_V1_PredictionRecord)] = []
        for row in 0..<input.rowCount where !ids[row].isEmpty && !update.placements[row].isEmpty {
            guard let cell = predicted[row] else { continue }  // no prediction: nothing to pair
            var record = Self.predictionRecord(update.placements[row], cell)
            record.labelled = inline?[row] != nil
            kept.append((ids[row], record))
        }
        return kept
    }

    /// Joins a label to a kept prediction: the pair counts in the prediction's windows, open or
    /// closed. Returns whether the task could pair them.
    mutating func joinLabel(_ record: Infranaut_V1_PredictionRecord, actual: PerformanceState.Cell) -> Bool {
        guard let task = windows.performanceTask else { return false }
        let keys = Self.windowKeys(record)
        let predicted = Self.cell(record)
        var pair = PerformanceState(task: task)
        let paired = pair.add(actual: actual, predicted: predicted)
        if !paired { pair.addUnusable(1) }
        let (usable, closed) = windows.addLabelled(keys: keys, actual: actual, predicted: predicted)
        for key in closed {
            if pending[key] != nil {
                pending[key]!.addLabels(pair)
            } else {
                lateLabels[key, default: PerformanceState(task: task)].absorb(pair)
            }
            if latest[key.version]?.key == key {
                latest[key.version]!.addLabels(pair)
                relabelled.insert(key.version)
            }
        }
        return paired && usable
    }

    /// Versions whose newest closed window took labels in the label op being applied (empty
    /// between ops: ``rejudgeLabelled(nowMs:)`` ends each).
    private var relabelled: Set<String> = []

    /// Ends a label op: the rules that read labels judge again each newest window that took some
    /// (docs/alerting.md, "Labels that come later"); `nowMs` is the op's acceptance time.
    mutating func rejudgeLabelled(nowMs: Int64) {
        defer { relabelled = [] }
        guard !rules.isEmpty else { return }
        for version in relabelled.sorted() {
            guard let result = latest[version] else { continue }
            alerts.rejudge(result, rules: rules, context: alertContext(result.key), nowMs: nowMs)
        }
    }

    static func predictionRecord(_ keys: [WindowKey], _ cell: PerformanceState.Cell) -> Infranaut_V1_PredictionRecord {
        .with {
            $0.windowStartMs = keys[0].startMs
            $0.version = keys[0].version
            $0.segments = keys.dropFirst().compactMap { key in
                key.segment.map { segment in
                    .with {
                        $0.column = segment.column
                        switch segment.value {
                        case .value(let value):
                            $0.kind = 1
                            $0.value = value
                        case .missing: $0.kind = 2
                        case .other: $0.kind = 3
                        }
                    }
                }
            }
            switch cell {
            case .number(let v): $0.number = v
            case .text(let t): $0.text = t
            case .bool(let b): $0.flag = b
            }
        }
    }

    static func windowKeys(_ record: Infranaut_V1_PredictionRecord) -> [WindowKey] {
        let whole = WindowKey(startMs: record.windowStartMs, series: SeriesKey(version: record.version))
        return [whole]
            + record.segments.map { stored in
                let value: SegmentValue =
                    switch stored.kind {
                    case 2: .missing
                    case 3: .other
                    default: .value(stored.value)
                    }
                return WindowKey(
                    startMs: record.windowStartMs,
                    series: SeriesKey(version: record.version, segment: Segment(column: stored.column, value: value)))
            }
    }

    static func cell(_ record: Infranaut_V1_PredictionRecord) -> PerformanceState.Cell {
        switch record.predicted {
        case .number(let v)?: .number(v)
        case .text(let t)?: .text(t)
        case .flag(let b)?: .bool(b)
        case nil: .number(.nan)
        }
    }

    /// Closes the windows idle for size + lateness by `processingTimeMs`; alerts they change are
    /// stamped `nowMs` (by default the same time).
    mutating func tick(processingTimeMs: Int64, nowMs: Int64? = nil) {
        record(windows.tick(processingTimeMs: processingTimeMs), nowMs: nowMs ?? processingTimeMs)
    }

    /// Applies a tick op at `nowMs` (the leader's clock, carried in the op): closes the windows
    /// idle by then and judges the rules on time without rows (`idle_windows`).
    mutating func tickOp(nowMs: Int64) {
        tick(processingTimeMs: nowMs)
        guard let last = windows.lastDataMs else { return }
        alerts.judgeIdle(
            lastDataMs: last, nowMs: nowMs, windowMs: windows.settings.sizeMs, rules: rules, model: model)
    }

    /// Whether a tick at `nowMs` would close something or judge an `idle_windows` rule.
    func isDue(nowMs: Int64) -> Bool {
        guard let due = tickDueAtMs else { return false }
        return nowMs >= due
    }

    /// The processing time from which a tick has work: closing the open windows, or judging an
    /// `idle_windows` rule that is not firing (nil: neither).
    var tickDueAtMs: Int64? {
        let close = windows.openWindowCount > 0 ? windows.lastDataMs.map { $0 &+ windows.settings.idleCloseMs } : nil
        let idle = alerts.idleDueMs(
            lastDataMs: windows.lastDataMs, windowMs: windows.settings.sizeMs, rules: rules, model: model)
        return [close, idle].compactMap { $0 }.min()
    }

    mutating func setUploadedReference(_ reference: ReferenceProfile, version: String) {
        windows.setUploadedReference(reference, version: version)
    }

    /// Keeps what closed (results, late rows, refused rows) and judges each newly closed window
    /// by the alert rules; `nowMs` is the acceptance time of the op that closed them.
    private mutating func record(_ update: WindowUpdate, nowMs: Int64) {
        for closed in update.closed {
            let result = evaluate(closed)
            // A window closes once. Should the same key close again (new window settings restart
            // the watermark), its rows count as late on the first result, which is kept.
            if pending[result.key] != nil {
                pending[result.key]!.lateSince &+= result.rows
                continue
            }
            pending[result.key] = ClosedResult(result)
            if !rules.isEmpty { alerts.judge(result, rules: rules, context: alertContext(result.key), nowMs: nowMs) }
            if result.key.segment == nil, (latest[result.key.version]?.startMs ?? .min) <= result.startMs {
                latest[result.key.version] = result
                // Bounded: the versions with the newest windows stay (ties by version, so every
                // replica keeps the same ones).
                if latest.count > Self.maxLatestVersions,
                    let oldest = latest.values.min(by: { ($0.startMs, $0.key.version) < ($1.startMs, $1.key.version) })
                {
                    latest[oldest.key.version] = nil
                }
            }
        }
        for (key, rows) in update.lateRows {
            if pending[key] != nil {
                pending[key]!.lateSince &+= rows
            } else {
                lateStored[key, default: 0] &+= rows
            }
            if latest[key.version]?.key == key { latest[key.version]!.lateRows &+= rows }
        }
        rejected.future &+= update.rejected.future
        rejected.windowLimit &+= update.rejected.windowLimit
    }

    /// Rows refused by the window logic (reported by `windows`; in the checkpoint with the model,
    /// carried over spec changes).
    var rejected = RejectedRows()

    /// Hands the results closed since the last checkpoint (and late rows and labels for stored
    /// ones) to the checkpoint; ``restore(_:)`` puts them back when its write fails.
    mutating func takeForCheckpoint() -> MonitorChanges {
        defer {
            pending = [:]
            lateStored = [:]
            lateLabels = [:]
        }
        return changes
    }

    /// What the next checkpoint writes to the `windows` family.
    var changes: MonitorChanges { MonitorChanges(results: pending, late: lateStored, labels: lateLabels) }

    /// Carries another monitor's newest windows over (a spec change replaces the monitor).
    mutating func inherit(latest other: [String: WindowResult]) {
        latest.merge(other) { mine, theirs in mine.startMs >= theirs.startMs ? mine : theirs }
    }

    mutating func restore(_ taken: MonitorChanges) {
        pending.merge(taken.results) { newer, _ in newer }
        lateStored.merge(taken.late) { $0 &+ $1 }
        lateLabels.merge(taken.labels) { newer, older in
            var both = older
            both.absorb(newer)
            return both
        }
    }

    /// The open windows, evaluated so far.
    func openResults() -> [WindowResult] {
        windows.openWindows().map(evaluate)
    }

    /// The open windows whose key `wanted` accepts, evaluated so far (only those are evaluated).
    func openResults(where wanted: (WindowKey) -> Bool) -> [WindowResult] {
        windows.openWindows(where: wanted).map(evaluate)
    }

    /// A segment's windows hold one value of the segment column by construction: that column is
    /// not compared in them (it would always differ from the whole model's reference).
    private func evaluate(_ window: EvaluableWindow) -> WindowResult {
        guard let column = window.window.key.segment?.column else {
            return WindowResult.evaluate(window.window, reference: window.reference, config: config)
        }
        var narrowed = config
        narrowed.features.removeAll { $0.name == column }
        narrowed.ignoredColumns.append(column)
        return WindowResult.evaluate(window.window, reference: window.reference, config: narrowed)
    }

    /// Versions longer than this (from a version column) are cut to it.
    static let maxVersionBytes = 128

    /// `batch` as the window logic reads it: role columns left out, the prediction apart, the
    /// version per row when the spec names a version column, and with declared features only the
    /// declared ones (and segment columns) profiled.
    private func windowBatch(_ batch: Infranaut_V1_TelemetryBatch, mismatchRows: [Infranaut_V1_MismatchRows])
        -> WindowBatch?
    {
        var mismatches: [Int: [Int]] = [:]
        for entry in mismatchRows { mismatches[Int(entry.column)] = entry.rows.map(Int.init) }
        let rows = Int(batch.rowCount)
        guard rows > 0 else { return nil }
        var columns: [WindowColumn] = []
        var prediction: WindowColumn?
        var label: WindowColumn?
        var versions: WindowBatch.Versions = .batch(batch.version)
        let predictionName = predictionColumn.isEmpty ? batch.predictionColumn : predictionColumn
        let labelName = labelColumn.isEmpty ? batch.labelColumn : labelColumn
        for (index, column) in batch.columns.enumerated() {
            if column.name == versionColumn, case .strings(let values)? = column.values {
                versions = .perRow(
                    values.values.map {
                        $0.utf8.count <= Self.maxVersionBytes
                            ? $0 : String(decoding: $0.utf8.prefix(Self.maxVersionBytes), as: UTF8.self)
                    })
                continue
            }
            if !profiled.isEmpty && !profiled.contains(column.name) && column.name != predictionName
                && column.name != labelName && !column.name.hasPrefix(AttributionResult.columnPrefix)
            {
                continue
            }
            guard var converted = Self.windowColumn(column) else { continue }
            converted.mismatchRows = mismatches[index] ?? []
            if column.name == predictionName {
                prediction = converted
            } else if !labelName.isEmpty && column.name == labelName {
                label = converted
            } else if !roles.contains(column.name) && column.name != batch.labelColumn {
                columns.append(converted)
            }
        }
        return WindowBatch(
            rowCount: rows, eventTimesMs: batch.eventTimeUnixMs.isEmpty ? nil : batch.eventTimeUnixMs,
            versions: versions, columns: columns, prediction: prediction, label: label)
    }

    static func windowColumn(_ column: Infranaut_V1_Column) -> WindowColumn? {
        switch column.values {
        case .doubles(let values)?:
            return WindowColumn(name: column.name, values: .numbers(values.values))
        case .strings(let values)?:
            return WindowColumn(
                name: column.name, values: .strings(values.values), missingRows: values.missingRows.map(Int.init))
        case .bools(let values)?:
            return WindowColumn(
                name: column.name, values: .bools(values.values), missingRows: values.missingRows.map(Int.init))
        case nil:
            return nil
        }
    }
}

extension ReferenceState {
    /// The uploaded reference as the window logic compares with it: the label column is no
    /// feature (windows hold it apart too).
    func profile(predictionColumn: String, labelColumn: String) -> ReferenceProfile {
        var columns: [ColumnProfile] = []
        var prediction: ColumnProfile?
        let label = self.labelColumn.isEmpty ? labelColumn : self.labelColumn
        for name in featureOrder where name != label || label.isEmpty {
            guard let feature = features[name] else { continue }
            let profile = feature.columnProfile
            if name == predictionColumn { prediction = profile } else { columns.append(profile) }
        }
        let span = lastEventUnixMs > firstEventUnixMs ? lastEventUnixMs - firstEventUnixMs : nil
        return ReferenceProfile(columns: columns, prediction: prediction, rows: rows, spanMs: span, labelled: labelled)
    }
}

/// The changes a checkpoint writes to the `windows` family for one model: results closed since the
/// last one, and late rows and late labels for results stored before.
struct MonitorChanges: Sendable {
    var results: [WindowKey: ClosedResult]
    var late: [WindowKey: UInt64]
    var labels: [WindowKey: PerformanceState]

    var isEmpty: Bool { results.isEmpty && late.isEmpty && labels.isEmpty }
}

/// A closed window's result on its way to the checkpoint that stores it, in its stored form.
///
/// A shard holds the results closed since its last checkpoint, which with the size-aware
/// checkpoint triggers can be a minute of windows; as structs (a ``FeatureResult`` per feature
/// with its strings and optionals) a 21-feature result took ~4 KB, serialized ~1 KB, and the
/// checkpoint writes the bytes anyway. Late rows counted after the close are kept apart and
/// folded in when the bytes are needed.
struct ClosedResult: Sendable {
    /// The result as evaluated at close.
    let bytes: [UInt8]
    /// Its rows, for a second close of the same window (counted as late on the first).
    let rows: UInt64
    /// Rows that arrived late for it since it closed.
    var lateSince: UInt64 = 0
    /// Labels joined to its predictions since it closed.
    var labelsSince: PerformanceState?

    mutating func addLabels(_ pair: PerformanceState) {
        if labelsSince == nil { labelsSince = pair } else { labelsSince!.absorb(pair) }
    }

    /// What it adds to the late rows of a result already stored for its window (a second close).
    var rowsAsLate: UInt64 { rows &+ lateSince }

    init(_ result: WindowResult) {
        bytes = result.serialized()
        rows = result.rows &+ result.lateRows
    }

    /// The result with the late rows counted since; nil only if the bytes do not decode (they
    /// were written by this process, so never in practice).
    var result: WindowResult? {
        guard var result = try? WindowResult(serialized: bytes) else { return nil }
        result.lateRows &+= lateSince
        if let labelsSince { result.addLabels(labelsSince) }
        return result
    }

    /// The bytes to store.
    var stored: [UInt8] {
        guard lateSince > 0 || labelsSince != nil, let result else { return bytes }
        return result.serialized()
    }
}
