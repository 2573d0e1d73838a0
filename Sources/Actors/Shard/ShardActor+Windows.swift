import Foundation
import Monitoring
import Storage
public import Wire

/// Window results (docs/windows.md): closed windows are read from the `windows` family and from
/// the results closed since the last checkpoint; open ones are evaluated on the spot.
extension ShardActor {
    /// Proposes a tick op when this replica leads and a model's windows are due to close by
    /// processing time (no data for window size + lateness), so every replica closes them at the
    /// same index. Called every second by the node.
    public func closeIdleWindows() async {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        guard state == .serving, raft?.role == .leader, !activities.ticking, models.windowsDue(nowMs: now) else {
            return
        }
        activities.ticking = true
        defer { activities.ticking = false }
        let op = Infranaut_V1_StoredOp.with {
            $0.windowTick = true
            $0.acceptedUnixMs = now
        }
        guard let command = try? encode(op) else { return }
        _ = await propose(command, op: op)
    }

    /// Deletes the results of windows that ended more than the spec's `retention.windows` ago, by
    /// this replica's clock, with one range delete per model whose cutoff moved by a window or more
    /// since the last time. Storage only (not the replicated state): every replica does it on its
    /// own, also when its shard receives nothing. Called every second by the node.
    public func enforceRetention() async {
        guard state == .serving, !activities.retaining else { return }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var batch = WriteBatch()
        var moved: [String: Int64] = [:]
        for (model, sizeMs, keepMs) in models.windowRetention {
            let size = max(1, sizeMs)
            let cutoff = now - keepMs - size
            if let last = retentionCutoffs[model], cutoff - last < size { continue }
            batch.deleteRange(
                from: StorageKeys.Windows.start(shard: shard, model: model, startMs: .min),
                to: StorageKeys.Windows.start(shard: shard, model: model, startMs: cutoff), in: store.windows)
            moved[model] = cutoff
        }
        guard !moved.isEmpty else { return }
        activities.retaining = true
        defer { activities.retaining = false }
        do throws(StorageError) {
            try await writer.write(batch)
            retentionCutoffs.merge(moved) { _, new in new }
        } catch {
            logger.warning("could not delete expired window results; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// `request.modelID`'s window results, oldest first, filtered as asked. Call after
    /// ``readIndex()`` confirmed leadership.
    public func windows(_ request: Infranaut_V1_WindowsRequest, deadline: ContinuousClock.Instant = .now + .seconds(30))
        -> Infranaut_V1_WindowsResponse
    {
        guard ContinuousClock.now < deadline else {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .deadlineExceeded, message: "the windows read waited past its deadline; retry")
            }
        }
        let monitor: ModelMonitor
        switch heldMonitor(request.modelID) {
        case .success(let found): monitor = found
        case .failure(let refusal): return .with { $0.status = refusal.status }
        }
        // Stored results newest first (keys are in time order), stopping once they fill an answer:
        // a model keeps up to 90 days of windows per series, and a read of the last few must not
        // decode them all. The key says the series, so only matching results are decoded, and
        // only the newest `last` of each.
        var byKey: [WindowKey: WindowResult] = [:]
        do throws(StorageError) {
            let prefix = StorageKeys.Windows.modelPrefix(shard: shard, model: request.modelID)
            var budget = Self.maxFeatureEntriesPerAnswer
            var perSeries: [StorageKeys.Windows.Series: Int] = [:]
            // The start at which the budget ran out: its other series are still read, since the
            // answer orders a start's series otherwise than the keys do.
            var lastStart: Int64?
            try store.database.scanBackward(prefix: prefix, in: store.windows) { (entry) throws(StorageError) -> Bool in
                guard let parsed = try? StorageKeys.Windows.parse(entry.key) else { return true }
                if let lastStart, parsed.startMs < lastStart { return false }
                guard Self.matches(parsed.series, request) else { return true }
                if request.last > 0, perSeries[parsed.series, default: 0] >= Int(request.last) { return true }
                guard let result = try? WindowResult(serialized: entry.value) else { return true }
                perSeries[parsed.series, default: 0] += 1
                byKey[result.key] = result
                budget -= result.answerEntries
                if budget < 0 && lastStart == nil { lastStart = parsed.startMs }
                return true
            }
        } catch {
            return .with {
                $0.status = Infranaut_V1_Status(
                    code: .unavailable, message: "the window results could not be read: \(error)")
            }
        }
        addUnstored(to: &byKey, model: request.modelID, monitor: monitor) { Self.matches($0, request) }
        var results = Array(byKey.values)
        if request.includeOpen { results += monitor.openResults() }
        results = results.filter { Self.matches($0.key, request) }
        results.sort { $0.key < $1.key }
        if request.last > 0 {
            // The newest `last` of each series.
            var perSeries: [SeriesKey: Int] = [:]
            results = results.reversed().filter { result in
                perSeries[result.key.series, default: 0] += 1
                return perSeries[result.key.series]! <= Int(request.last)
            }.reversed()
        }
        // One answer stays well inside a reply frame: the newest windows up to the entry budget.
        var budget = Self.maxFeatureEntriesPerAnswer
        var kept = 0
        for result in results.reversed() {
            budget -= result.answerEntries
            if budget < 0 { break }
            kept += 1
        }
        let truncated = kept < results.count
        results = Array(results.suffix(kept))
        return .with {
            $0.status = .ok
            $0.truncated = truncated
            $0.windows = results.map(\.wire)
            $0.rejectedFutureRows = monitor.rejected.future
            $0.rejectedWindowLimitRows = monitor.rejected.windowLimit
        }
    }

    /// Adds to stored results what a checkpoint is writing right now, then what closed since (newest
    /// last): late rows and labels for the stored ones, and the results not stored yet that
    /// `wanted` accepts.
    func addUnstored(
        to byKey: inout [WindowKey: WindowResult], model: String, monitor: ModelMonitor,
        wanted: (WindowKey) -> Bool
    ) {
        for part in [windowResultsInFlight[model], monitor.changes] {
            guard let part else { continue }
            for (key, rows) in part.late { byKey[key]?.lateRows &+= rows }
            for (key, labels) in part.labels { byKey[key]?.addLabels(labels) }
            for (key, closed) in part.results where wanted(key) {
                if byKey[key] != nil {
                    byKey[key]!.lateRows &+= closed.rowsAsLate
                    if let labels = closed.labelsSince { byKey[key]!.addLabels(labels) }
                } else if let result = closed.result {
                    byKey[key] = result
                }
            }
        }
    }

    /// Feature entries (and windows) one `windows` answer carries at most (about 10 MB).
    static let maxFeatureEntriesPerAnswer = 100_000

    static func matches(_ series: StorageKeys.Windows.Series, _ request: Infranaut_V1_WindowsRequest) -> Bool {
        if request.filterVersion && series.version != request.version { return false }
        if request.wholeModelOnly { return series.segmentKind == 0 }
        guard !request.segmentColumn.isEmpty else { return true }
        return series.segmentKind == 1 && series.segmentColumn == request.segmentColumn
            && series.segmentValue == request.segmentValue
    }

    static func matches(_ key: WindowKey, _ request: Infranaut_V1_WindowsRequest) -> Bool {
        if request.filterVersion && key.version != request.version { return false }
        if request.wholeModelOnly { return key.segment == nil }
        guard !request.segmentColumn.isEmpty else { return true }
        guard let segment = key.segment, segment.column == request.segmentColumn else { return false }
        if case .value(let value) = segment.value { return value == request.segmentValue }
        return false
    }
}

extension WindowResult {
    /// What the result weighs in an answer's budget: its features, a share for each performance
    /// metric (a name and a number, about a tenth of a feature's figures) and itself.
    var answerEntries: Int {
        features.count + 1 + ((performance?.metrics.count ?? 0) + (performance?.estimated.count ?? 0) + 9) / 10
    }

    var wire: Infranaut_V1_WindowInfo {
        .with { info in
            info.startUnixMs = key.startMs
            info.endUnixMs = endMs
            info.version = key.version
            if let segment = key.segment {
                info.segmentColumn = segment.column
                switch segment.value {
                case .value(let value):
                    info.segmentKind = .value
                    info.segmentValue = value
                case .missing: info.segmentKind = .missing
                case .other: info.segmentKind = .other
                }
            }
            info.open = isOpen
            info.rows = rows
            info.lateRows = lateRows
            info.driftShare = driftShare
            info.datasetDrift = datasetDrift
            info.driftedCount = UInt32(clamping: driftedCount)
            if let expectedRows {
                info.hasExpectedRows_p = true
                info.expectedRows = expectedRows
            }
            info.features = features.map(\.wire)
            if let prediction { info.prediction = prediction.wire }
            info.schemaAdded = schema.added
            info.schemaMissing = schema.missing
            info.schemaChangedType = schema.changedType
            if let performance {
                info.performance = .with {
                    $0.labelledRows = performance.labelledRows
                    $0.unusableRows = performance.unusableRows
                    for metric in performance.metrics where metric.value.isFinite {
                        $0.realized[metric.name] = metric.value
                    }
                    for e in performance.estimated where e.value.isFinite && e.samplingError.isFinite {
                        $0.estimated[e.name] = .with {
                            $0.value = e.value
                            $0.lower = e.lower
                            $0.upper = e.upper
                            $0.samplingError = e.samplingError
                        }
                    }
                }
            }
        }
    }
}

extension FeatureResult {
    var wire: Infranaut_V1_FeatureWindowInfo {
        .with { info in
            info.name = name
            info.type = type.rawValue
            info.method = method?.rawValue ?? ""
            if let score {
                info.hasScore_p = true
                info.score = score
            }
            info.threshold = threshold ?? 0
            info.drift = drift
            info.note = note ?? ""
            info.values = values
            info.missingRate = missingRate
            if let missingRateChange {
                info.hasMissingRateChange_p = true
                info.missingRateChange = missingRateChange
            }
            info.typeMismatches = typeMismatches
            info.nonFinite = nonFinite
            if let outsideSpecRangeShare {
                info.hasOutsideSpecRangeShare_p = true
                info.outsideSpecRangeShare = outsideSpecRangeShare
            }
            if let outsideReferenceRangeShare {
                info.hasOutsideReferenceRangeShare_p = true
                info.outsideReferenceRangeShare = outsideReferenceRangeShare
            }
            if let newCategories {
                info.hasNewCategories_p = true
                info.newCategories = newCategories
                info.newCategoryValues = newCategoryValues ?? 0
            }
        }
    }
}

extension Infranaut_V1_CompareRequest {
    /// What is wrong with the request, naming the field; nil when it can be served.
    var problem: String? {
        if modelID.isEmpty { return "compare.model_id is empty" }
        for (field, version) in [("version_a", versionA), ("version_b", versionB)] where version.utf8.count > 128 {
            return "compare.\(field) is \(version.utf8.count) bytes; the limit is 128"
        }
        if versionA == versionB {
            return "compare.version_a and compare.version_b are both \"\(versionA)\"; name two versions"
        }
        if ComparedMetric(rawValue: metric) == nil {
            return
                "compare.metric \"\(metric)\" is not one of \(ComparedMetric.allCases.map(\.rawValue).joined(separator: ", "))"
        }
        if fromUnixMs < 0 || toUnixMs < 0 {
            return "compare.from_unix_ms and to_unix_ms are ms since 1970 (0: unbounded)"
        }
        if toUnixMs != 0 && fromUnixMs >= toUnixMs { return "compare.from_unix_ms must be before to_unix_ms" }
        return nil
    }
}

extension ShardActor {
    /// Compares two versions of `request.modelID` on a metric over their whole-model windows in
    /// the range: stored results, those a checkpoint is writing or that closed since, and the open
    /// windows, each window counted once with the labels joined to it so far. Call after
    /// ``readIndex()`` confirmed leadership.
    public func compare(_ request: Infranaut_V1_CompareRequest, deadline: ContinuousClock.Instant = .now + .seconds(30))
        -> Infranaut_V1_CompareResponse
    {
        func refused(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_CompareResponse {
            .with { $0.status = Infranaut_V1_Status(code: code, message: message) }
        }
        if let problem = request.problem { return refused(.invalidArgument, problem) }
        let metric = ComparedMetric(rawValue: request.metric)!
        let monitor: ModelMonitor
        switch heldMonitor(request.modelID) {
        case .success(let found): monitor = found
        case .failure(let refusal): return .with { $0.status = refusal.status }
        }
        guard let task = monitor.windows.performanceTask else {
            return refused(
                .invalidArgument,
                "model \"\(request.modelID)\"'s spec names no task whose performance can be compared (binary or multiclass classification with classes, or regression)"
            )
        }
        let versions = [request.versionA, request.versionB]
        func wanted(_ key: WindowKey) -> Bool {
            key.segment == nil && versions.contains(key.version) && key.startMs >= request.fromUnixMs
                && (request.toUnixMs == 0 || key.startMs < request.toUnixMs)
        }
        // Every window once, merged as it is read (a state can be 16 KiB; months of windows are not
        // held at once): stored results with what reached them since the checkpoint, then results
        // closed since and not stored yet, then the open windows.
        var closedSince: [WindowKey: [ClosedResult]] = [:]
        var labelsSince: [WindowKey: [PerformanceState]] = [:]
        for part in [windowResultsInFlight[request.modelID], monitor.changes] {
            guard let part else { continue }
            for (key, labels) in part.labels where wanted(key) { labelsSince[key, default: []].append(labels) }
            for (key, closed) in part.results where wanted(key) { closedSince[key, default: []].append(closed) }
        }
        // Merged under the model's task now: windows read for another one (a threshold or the
        // classes changed) are counted apart, not mixed in.
        var merged: [String: (state: PerformanceState, windows: UInt32, other: UInt32)] = [:]
        for version in versions { merged[version] = (PerformanceState(task: task), 0, 0) }
        func merge(_ result: WindowResult) {
            guard let state = result.performanceState, state.labelledRows > 0 else { return }
            guard state.task == task else {
                merged[result.key.version]!.other += 1
                return
            }
            merged[result.key.version]!.state.merge(state)
            merged[result.key.version]!.windows += 1
        }
        var outOfTime = false
        do throws(StorageError) {
            let prefix = StorageKeys.Windows.modelPrefix(shard: shard, model: request.modelID)
            let start =
                request.fromUnixMs > 0
                ? StorageKeys.Windows.start(shard: shard, model: request.modelID, startMs: request.fromUnixMs) : nil
            var visited = 0
            try store.database.scan(prefix: prefix, from: start, in: store.windows) {
                (entry) throws(StorageError) -> Bool in
                visited += 1
                if visited % 256 == 0 && ContinuousClock.now >= deadline {
                    outOfTime = true
                    return false
                }
                guard let parsed = try? StorageKeys.Windows.parse(entry.key) else { return true }
                if request.toUnixMs != 0 && parsed.startMs >= request.toUnixMs { return false }
                guard parsed.series.segmentKind == 0, versions.contains(parsed.series.version),
                    parsed.startMs >= request.fromUnixMs, var result = try? WindowResult(serialized: entry.value)
                else { return true }
                for labels in labelsSince[result.key] ?? [] { result.addLabels(labels) }
                for closed in closedSince.removeValue(forKey: result.key) ?? [] {
                    if let labels = closed.labelsSince { result.addLabels(labels) }
                }
                merge(result)
                return true
            }
        } catch {
            return refused(.unavailable, "the window results could not be read: \(error)")
        }
        guard !outOfTime, ContinuousClock.now < deadline else {
            return refused(.deadlineExceeded, "the comparison ran past its deadline; narrow --from/--to and retry")
        }
        for key in closedSince.keys.sorted() {
            let list = closedSince[key]!
            guard var first = list[0].result else { continue }
            for closed in list.dropFirst() { if let labels = closed.labelsSince { first.addLabels(labels) } }
            // Labels joined while this result was being written count as late ones for it.
            for labels in labelsSince[key] ?? [] { first.addLabels(labels) }
            merge(first)
        }
        for result in monitor.openResults(where: wanted) { merge(result) }
        let a = merged[request.versionA]!, b = merged[request.versionB]!
        let comparison: VersionComparison
        do throws(ComparisonError) {
            comparison = try VersionComparison.compare(a.state, b.state, on: metric)
        } catch {
            return refused(.invalidArgument, "\(error)")
        }
        func side(_ version: String, _ figures: VersionComparison.Side, _ counted: (windows: UInt32, other: UInt32))
            -> Infranaut_V1_CompareSide
        {
            .with {
                $0.version = version
                $0.value = figures.value
                $0.labelledRows = figures.n
                $0.windows = counted.windows
                $0.otherTaskWindows = counted.other
            }
        }
        return .with {
            $0.status = .ok
            $0.metric = metric.rawValue
            $0.a = side(request.versionA, comparison.a, (a.windows, a.other))
            $0.b = side(request.versionB, comparison.b, (b.windows, b.other))
            $0.difference = comparison.difference
            $0.lower = comparison.lower
            $0.upper = comparison.upper
            $0.pValue = comparison.pValue
            $0.test = comparison.test
            $0.better = comparison.better ?? ""
        }
    }
}
