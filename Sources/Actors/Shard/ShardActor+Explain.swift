import Monitoring
import Storage
public import Wire

extension Infranaut_V1_ExplainRequest {
    /// Features and segments listed at most.
    static let maxTop: UInt32 = 1_000

    /// What is wrong with the request, or nil.
    var problem: String? {
        if modelID.isEmpty { return "explain needs a model id" }
        if version.utf8.count > ModelMonitor.maxVersionBytes {
            return "the version is longer than \(ModelMonitor.maxVersionBytes) bytes"
        }
        if top > Self.maxTop { return "top is at most \(Self.maxTop), not \(top)" }
        return nil
    }
}

extension ShardActor {
    /// Root-cause hints for the whole-model window of `request.version` that holds
    /// `request.windowUnixMs` (docs/performance.md, "Root-cause hints"): the window stored, being
    /// stored, closed since the last checkpoint or still open, with its segments' windows of the
    /// same start. Call after ``readIndex()`` confirmed leadership.
    public func explain(_ request: Infranaut_V1_ExplainRequest, deadline: ContinuousClock.Instant = .now + .seconds(30))
        -> Infranaut_V1_ExplainResponse
    {
        func refused(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_ExplainResponse {
            .with { $0.status = Infranaut_V1_Status(code: code, message: message) }
        }
        if let problem = request.problem { return refused(.invalidArgument, problem) }
        guard ContinuousClock.now < deadline else {
            return refused(.deadlineExceeded, "the explain read waited past its deadline; retry")
        }
        let monitor: ModelMonitor
        switch heldMonitor(request.modelID) {
        case .success(let found): monitor = found
        case .failure(let refusal): return .with { $0.status = refusal.status }
        }
        let start = monitor.windows.settings.windowStart(request.windowUnixMs)
        func wanted(_ key: WindowKey) -> Bool { key.startMs == start && key.version == request.version }

        // One start's results: its keys are adjacent (start, then series), so this reads only them.
        var byKey: [WindowKey: WindowResult] = [:]
        do throws(StorageError) {
            let prefix = StorageKeys.Windows.start(shard: shard, model: request.modelID, startMs: start)
            try store.database.scan(prefix: prefix, in: store.windows) { (entry) throws(StorageError) -> Bool in
                guard let parsed = try? StorageKeys.Windows.parse(entry.key), parsed.startMs == start,
                    parsed.series.version == request.version,
                    let result = try? WindowResult(serialized: entry.value)
                else { return true }
                byKey[result.key] = result
                return ContinuousClock.now < deadline
            }
        } catch {
            return refused(.unavailable, "the window results could not be read: \(error)")
        }
        guard ContinuousClock.now < deadline else {
            return refused(.deadlineExceeded, "the explain read ran past its deadline; retry")
        }
        addUnstored(to: &byKey, model: request.modelID, monitor: monitor, wanted: wanted)
        for result in monitor.openResults(where: wanted) where byKey[result.key] == nil { byKey[result.key] = result }

        let wholeKey = WindowKey(startMs: start, series: SeriesKey(version: request.version))
        guard let whole = byKey.removeValue(forKey: wholeKey) else {
            return refused(
                .notFound,
                "model \"\(request.modelID)\" has no window of version \"\(request.version)\" starting at \(start) ms (the window holding \(request.windowUnixMs)); list them with infranaut windows"
            )
        }
        var threshold: Double?
        if case .binary(let t)? = whole.performanceState?.task ?? monitor.windows.performanceTask { threshold = t }
        let hints = RootCause.explain(
            window: whole, segments: byKey.values.sorted { $0.key < $1.key },
            reference: monitor.windows.labelledReference(for: wholeKey), threshold: threshold)
        let top = Int(request.top == 0 ? 10 : request.top)
        return .with {
            $0.status = .ok
            $0.window = whole.wire
            if let p = hints.performance { $0.performance = p.wire }
            $0.features = hints.features.prefix(top).map(\.wire)
            $0.segments = hints.segments.prefix(top).map(\.wire)
            $0.segmentBasis = hints.segmentBasis ?? ""
            $0.featuresTotal = UInt32(clamping: hints.features.count)
            $0.segmentsTotal = UInt32(clamping: hints.segments.count)
        }
    }
}

extension RootCause.Performance {
    var wire: Infranaut_V1_ExplainPerformance {
        .with {
            $0.metric = metric
            $0.value = value
            $0.estimated = estimated
            if let reference, let margin, reference.isFinite, margin.isFinite {
                $0.referenced = true
                $0.reference = reference
                $0.margin = margin
            }
            $0.dropped = dropped
        }
    }
}

extension RootCause.FeatureHint {
    var wire: Infranaut_V1_FeatureHint {
        .with {
            $0.name = name
            $0.drift = drift
            if let method, let score, let threshold, score.isFinite, threshold.isFinite {
                $0.method = method.rawValue
                $0.score = score
                $0.threshold = threshold
            }
            $0.severity = severity.isFinite ? severity : 0
            if let importance, let attribution, importance.isFinite, attribution.isFinite {
                $0.attributed = true
                $0.importance = importance
                $0.attribution = attribution
                if let referenceAttribution, let attributionChange, attributionChange.isFinite {
                    $0.attributionReferenced = true
                    $0.referenceAttribution = referenceAttribution
                    $0.attributionChange = attributionChange
                }
            }
            $0.attributionShifted = attributionShifted
        }
    }
}

extension RootCause.SegmentHint {
    var wire: Infranaut_V1_SegmentHint {
        .with {
            $0.column = segment.column
            switch segment.value {
            case .value(let v):
                $0.value = v
                $0.kind = .value
            case .missing: $0.kind = .missing
            case .other: $0.kind = .other
            }
            $0.rows = rows
            $0.rowShare = rowShare
            $0.errors = errors
            $0.errorShare = errorShare
            $0.lift = lift
            $0.metricValue = value
        }
    }
}
