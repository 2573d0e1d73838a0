/// The evaluation of one window of one series: drift, data quality, schema and volume, plus room
/// for performance (filled once labels are joined).
public struct WindowResult: Sendable, Hashable {
    public var key: WindowKey
    public var endMs: Int64
    /// True while the window is open (figures so far); stored results are closed.
    public var isOpen: Bool
    public var rows: UInt64
    /// Rows that arrived after the window closed (added by the caller from ``WindowUpdate``).
    public var lateRows: UInt64 = 0
    /// Declared (or reference) features present in the window, in spec order.
    public var features: [FeatureResult] = []
    public var prediction: FeatureResult?
    /// Features with a drift score that drift, and their share of those with a score.
    public var driftedCount = 0
    public var driftShare = 0.0
    /// `driftShare ≥ DriftOptions.datasetDriftShare` (and at least one feature compared).
    public var datasetDrift = false
    public var schema = SchemaChange()
    /// Rows a window of this length holds at the reference's rate; `nil` without a reference span.
    public var expectedRows: Double?
    /// Filled by the performance evaluation once labels are known.
    public var performance: WindowPerformance?
    /// The mergeable state ``performance`` is computed from, kept in stored results so that a
    /// label joined after the window closed changes its figures (``addLabels(_:)``).
    public var performanceState: PerformanceState?
    /// Mean |attribution| per feature from the window's `shap.<feature>` columns, with the
    /// reference's, in the order the columns arrived (empty without such columns).
    public var attributions: [AttributionResult] = []

    public init(window: WindowSnapshot) {
        key = window.key
        endMs = window.endMs
        isOpen = window.isOpen
        rows = window.rows
    }

    public var startMs: Int64 { key.startMs }

    /// `rows / expectedRows` (1 = the reference's rate); `nil` without an expectation.
    public var volumeRatio: Double? {
        guard let expectedRows, expectedRows > 0 else { return nil }
        return Double(rows) / expectedRows
    }

    /// Adds labels joined after the window closed (their pairs, as a state of their own), and
    /// recomputes the performance figures.
    public mutating func addLabels(_ joined: PerformanceState) {
        if performanceState == nil, let earlier = performance, earlier.labelledRows &+ earlier.unusableRows > 0 {
            // Stored before results kept their state (format 2): its figures cannot take more
            // pairs, so the new labels count as unusable in it. (A result whose performance holds
            // only estimates has no labelled rows yet: it starts a state.)
            performance!.unusableRows = earlier.unusableRows &+ joined.labelledRows &+ joined.unusableRows
            return
        }
        if performanceState == nil { performanceState = PerformanceState(task: joined.task) }
        performanceState!.absorb(joined)
        var realized = performanceState!.result
        realized.estimated = performance?.estimated ?? []  // from the scores, which labels do not change
        performance = realized
    }

    /// Names of the drifting features, in spec order.
    public var driftingFeatures: [String] { features.filter(\.drift).map(\.name) }
}

/// Drift and quality of one column in one window.
public struct FeatureResult: Sendable, Hashable {
    public var name: String
    /// The type of the window's profile.
    public var type: ColumnType
    /// Drift: the deciding method, its score and threshold; `nil` without a reference column.
    public var method: DriftMethod?
    public var score: Double?
    public var threshold: Double?
    public var drift = false
    /// Why a method was substituted or a score is missing.
    public var note: String?
    /// Non-missing (finite, for numeric) values.
    public var values: UInt64 = 0
    public var missingRate = 0.0
    /// `missingRate` minus the reference's; `nil` without a reference column.
    public var missingRateChange: Double?
    public var typeMismatches: UInt64 = 0
    /// ±infinity values (numeric).
    public var nonFinite: UInt64 = 0
    /// Share of values outside the spec's range (numeric with a declared range).
    public var outsideSpecRangeShare: Double?
    /// Share of values outside the reference's observed [min, max] (numeric).
    public var outsideReferenceRangeShare: Double?
    /// Categories never seen in the reference, and the values carrying them (categorical).
    public var newCategories: UInt64?
    public var newCategoryValues: UInt64?

    public init(name: String, type: ColumnType) {
        self.name = name
        self.type = type
    }
}

/// Columns added, missing or of another type than the spec (or the reference) expects.
public struct SchemaChange: Sendable, Hashable {
    public var added: [String] = []
    public var missing: [String] = []
    public var changedType: [String] = []

    public init() {}

    public var isEmpty: Bool { added.isEmpty && missing.isEmpty && changedType.isEmpty }
}

/// Performance figures of a window, by metric name (for example "accuracy", "rmse"): realized once
/// labels are joined, and estimated from a binary classifier's scores (``PerformanceEstimator``).
/// Kept as named values so new metrics need no new format version.
public struct WindowPerformance: Sendable, Hashable {
    /// Estimated metrics sorted by name, each with its band (empty without a labelled reference).
    public var estimated: [EstimatedMetric] = [] {
        didSet { estimated.sort { $0.name < $1.name } }
    }
    /// Metrics sorted by name.
    public var metrics: [(name: String, value: Double)] {
        get { storage }
        set { storage = newValue.sorted { $0.name < $1.name } }
    }
    /// Labelled rows the metrics are computed from.
    public var labelledRows: UInt64
    /// Labelled rows whose prediction or label the task could not read (not in the metrics).
    public var unusableRows: UInt64
    private var storage: [(name: String, value: Double)] = []

    public init(metrics: [(name: String, value: Double)], labelledRows: UInt64, unusableRows: UInt64 = 0) {
        self.labelledRows = labelledRows
        self.unusableRows = unusableRows
        self.metrics = metrics
    }

    public static func == (a: WindowPerformance, b: WindowPerformance) -> Bool {
        a.labelledRows == b.labelledRows && a.unusableRows == b.unusableRows && a.estimated == b.estimated
            && a.storage.elementsEqual(b.storage) { $0 == $1 }
    }

    public func hash(into h: inout Hasher) {
        h.combine(labelledRows)
        h.combine(unusableRows)
        h.combine(estimated)
        for m in storage {
            h.combine(m.name)
            h.combine(m.value)
        }
    }
}
