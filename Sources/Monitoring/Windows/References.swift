/// A baseline to compare windows with: column profiles, the prediction's, and the volume they
/// stand for.
public struct ReferenceProfile: Sendable, Hashable {
    public var columns: [ColumnProfile]
    public var prediction: ColumnProfile?
    public var rows: UInt64
    /// Event-time span the rows cover, for the expected rows per window; `nil` when unknown.
    public var spanMs: Int64?
    /// A binary classifier's labelled reference scores, positives and negatives per bin: what the
    /// estimated performance is calibrated with; `nil` without labelled rows.
    public var labelled: ScoreHistogram?

    public init(
        columns: [ColumnProfile], prediction: ColumnProfile? = nil, rows: UInt64, spanMs: Int64? = nil,
        labelled: ScoreHistogram? = nil
    ) {
        self.columns = columns
        self.prediction = prediction
        self.rows = rows
        self.spanMs = spanMs
        self.labelled = labelled
    }

    /// Rows a window of `sizeMs` would hold at the reference's rate; `nil` without a span.
    public func expectedRows(perWindowOf sizeMs: Int64) -> Double? {
        guard let spanMs, spanMs > 0 else { return nil }
        return Double(rows) * Double(sizeMs) / Double(spanMs)
    }
}

/// The first rows of one series, accumulated until the policy's row count is reached.
struct FirstRows: Sendable, Hashable {
    var profiles = WindowAccumulator()
    var minEventMs: Int64 = .max
    var maxEventMs: Int64 = .min

    var reference: ReferenceProfile {
        ReferenceProfile(
            columns: profiles.profiles, prediction: profiles.prediction?.profile, rows: profiles.rows,
            spanMs: profiles.rows > 0 ? maxEventMs - minEventMs : nil, labelled: profiles.performance?.labelledScores)
    }

    mutating func add(
        _ batch: PreparedBatch, rows subset: [Int], eventTimes: [Int64]?, processingTimeMs: Int64,
        task: PerformanceTask?
    ) {
        // With the task, inline labels make a labelled reference (the estimates' calibration).
        profiles.add(batch, rows: subset, task: task)
        profiles.scores = nil  // a reference calibrates with its labelled scores, not all of them
        for r in subset {
            let t = eventTimes?[r] ?? processingTimeMs
            minEventMs = Swift.min(minEventMs, t)
            maxEventMs = Swift.max(maxEventMs, t)
        }
    }
}

/// Every reference a model keeps, for the three policies; bounded by
/// ``WindowSettings/maxReferenceVersions`` versions, the least recently used forgotten first.
struct ReferenceState: Sendable, Hashable {
    var uploaded: [String: ReferenceProfile] = [:]
    var firstRows: [SeriesKey: FirstRows] = [:]
    /// The last closed window of each series (previous-window policy).
    var previous: [SeriesKey: ReferenceProfile] = [:]
    /// Versions holding references, least recently used first.
    var versions: [String] = []

    mutating func setUploaded(_ reference: ReferenceProfile, version: String, limit: Int) {
        uploaded[version] = reference
        touch(version, limit: limit)
    }

    /// Feeds first-rows references (the rows of `subset` in order, until each series is full).
    mutating func accumulate(
        _ series: SeriesKey, _ batch: PreparedBatch, rows subset: [Int], eventTimes: [Int64]?,
        processingTimeMs: Int64, settings: WindowSettings, task: PerformanceTask?
    ) {
        guard case .firstRows(let target) = settings.reference else { return }
        if series.segment == nil { touch(series.version, limit: settings.maxReferenceVersions) }
        let have = firstRows[series]?.profiles.rows ?? 0
        guard have < target else { return }
        let take = Array(subset.prefix(Int(clamping: target - have)))
        firstRows[series, default: FirstRows()].add(
            batch, rows: take, eventTimes: eventTimes, processingTimeMs: processingTimeMs, task: task)
    }

    mutating func windowClosed(_ key: WindowKey, _ window: WindowAccumulator, settings: WindowSettings) {
        guard settings.reference == .previousWindow else { return }
        if key.segment == nil { touch(key.version, limit: settings.maxReferenceVersions) }
        previous[key.series] = ReferenceProfile(
            columns: window.profiles, prediction: window.prediction?.profile, rows: window.rows,
            spanMs: settings.sizeMs, labelled: window.performance?.labelledScores)
    }

    /// The reference of `key` under the policy: the version's upload (segments too), the series'
    /// first rows once complete, or the series' last closed window.
    func reference(for key: WindowKey, settings: WindowSettings) -> ReferenceProfile? {
        switch settings.reference {
        case .uploaded:
            return uploaded[key.version]
        case .firstRows(let target):
            guard let state = firstRows[key.series], state.profiles.rows >= target else { return nil }
            return state.reference
        case .previousWindow:
            return previous[key.series]
        }
    }

    /// Marks `version` as used; forgets the least recently used versions beyond `limit`.
    private mutating func touch(_ version: String, limit: Int) {
        if versions.last == version { return }
        versions.removeAll { $0 == version }
        versions.append(version)
        while versions.count > limit {
            let gone = versions.removeFirst()
            uploaded[gone] = nil
            firstRows = firstRows.filter { $0.key.version != gone }
            previous = previous.filter { $0.key.version != gone }
        }
    }
}
