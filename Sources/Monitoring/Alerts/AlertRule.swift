/// A rule that judges each closed window of a model and raises an alert when its condition holds
/// for enough consecutive windows (docs/alerting.md). Rules come from the model's spec; the
/// defaults (``AlertRule/defaults``) apply unless the spec replaces or disables them by name.
public struct AlertRule: Sendable, Hashable {
    public var name: String
    public var metric: AlertMetric
    /// For per-feature metrics: the feature judged; nil means any feature (the worst one).
    public var feature: String?
    public var condition: AlertCondition
    /// Consecutive windows the condition must hold before the alert fires (at least 1).
    public var forWindows: Int
    public var severity: AlertSeverity
    /// Sorted by key: part of the fingerprint.
    public var labels: [(key: String, value: String)]
    public var summary: String
    public var runbookURL: String
    public var notify: [String]
    /// Whether segments' windows are judged too (the whole model's always are).
    public var perSegment: Bool

    public init(
        name: String, metric: AlertMetric, feature: String? = nil, condition: AlertCondition, forWindows: Int = 1,
        severity: AlertSeverity = .warning, labels: [String: String] = [:], summary: String = "",
        runbookURL: String = "", notify: [String] = [], perSegment: Bool = false
    ) {
        self.name = name
        self.metric = metric
        self.feature = feature
        self.condition = condition
        self.forWindows = max(1, forWindows)
        self.severity = severity
        self.labels = labels.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
        self.summary = summary
        self.runbookURL = runbookURL
        self.notify = notify
        self.perSegment = perSegment
    }

    public static func == (a: AlertRule, b: AlertRule) -> Bool {
        a.name == b.name && a.metric == b.metric && a.feature == b.feature && a.condition == b.condition
            && a.forWindows == b.forWindows && a.severity == b.severity && a.summary == b.summary
            && a.runbookURL == b.runbookURL && a.notify == b.notify && a.perSegment == b.perSegment
            && a.labels.elementsEqual(b.labels) { $0 == $1 }
    }

    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(metric)
        h.combine(condition)
        for label in labels {
            h.combine(label.key)
            h.combine(label.value)
        }
    }

    /// The rules every model has unless its spec replaces or disables them by name: the dataset
    /// drifts; a feature's missing values rise by 10 points against the reference; the
    /// performance (realized, else estimated) falls more than three sampling errors below the
    /// labelled reference's; no rows came for more than two windows' length.
    public static let defaults: [AlertRule] = [
        AlertRule(
            name: "dataset-drift", metric: .datasetDrift, condition: .above(0.5), severity: .warning,
            summary: "{{model}}: dataset drift in the window from {{window}} (drift share {{value}})"),
        AlertRule(
            name: "missing-values-rise", metric: .missingRateChange, condition: .above(0.1), severity: .warning,
            summary: "{{model}}: {{feature}} misses {{value}} more of its values than in the reference"),
        AlertRule(
            name: "performance-drop", metric: .performanceDrop, condition: .above(3), severity: .critical,
            summary:
                "{{model}}: {{feature}} {{value}} sampling errors below the reference in the window from {{window}}"),
        AlertRule(
            name: "traffic-stopped", metric: .idleWindows, condition: .above(2), severity: .warning,
            summary: "{{model}}: no rows since {{window}} ({{value}} windows long)"),
    ]

    /// The rules a model has: its spec's (in order) then the `defaults` (the built-in ones unless
    /// given) its spec neither replaces nor disables.
    public static func effective(_ declared: [AlertRule], disabled: Set<String>, defaults: [AlertRule] = defaults)
        -> [AlertRule]
    {
        let named = Set(declared.map(\.name)).union(disabled)
        return declared + defaults.filter { !named.contains($0.name) }
    }
}

public enum AlertSeverity: UInt8, Sendable, Hashable, CaseIterable {
    case info = 1
    case warning = 2
    case critical = 3

    public var name: String {
        switch self {
        case .info: "info"
        case .warning: "warning"
        case .critical: "critical"
        }
    }
}

/// When a rule's metric counts as bad in a window.
public enum AlertCondition: Sendable, Hashable {
    /// The metric is above the value.
    case above(Double)
    /// The metric is below the value.
    case below(Double)
    /// |robust anomaly score| of the metric against its previous windows is at least the value
    /// (``RobustAnomaly``; needs ``AlertCondition/minimumHistory`` windows before).
    case anomaly(Double)
    /// ADWIN over the metric's window series (the kept history and this window) finds a change at
    /// this delta among the last ``AlertCondition/recentChange`` windows.
    case changePoint(Double)

    /// The value shown beside the metric (the threshold, score or delta).
    public var threshold: Double {
        switch self {
        case .above(let v), .below(let v), .anomaly(let v), .changePoint(let v): v
        }
    }

    /// Windows of history an anomaly or change-point condition needs before it can hold.
    public static let minimumHistory = 8
    /// Windows of history kept per alert.
    public static let keptHistory = 64
    /// How many windows a change point keeps its condition holding after ADWIN finds it.
    public static let recentChange = 8
}

/// What a rule reads from a closed window.
public enum AlertMetric: Sendable, Hashable {
    case driftShare
    /// 1 when the dataset drifts, else 0.
    case datasetDrift
    /// 1 when the feature drifts, else 0.
    case featureDrift
    case featureDriftScore
    case missingRate
    /// The missing rate minus the reference's.
    case missingRateChange
    /// The share of values outside the spec's range (else the reference's).
    case outOfRangeShare
    /// Distinct categories not in the reference.
    case newCategories
    case rows
    case lateRows
    /// A performance metric: realized when the window has labelled rows, else estimated (or only
    /// one of them).
    case performance(String, PerformanceSource)
    /// How far the window's headline figure (ROC AUC, else accuracy; realized when labelled, else
    /// estimated) is below the labelled reference's, in sampling errors at the window's rows
    /// (binary classifiers with a labelled reference only).
    case performanceDrop
    /// How long the model has had no rows (of any version), in window lengths: judged by time,
    /// not per window (``AlertBook/judgeIdle(lastDataMs:nowMs:windowMs:rules:model:)``).
    case idleWindows

    public enum PerformanceSource: UInt8, Sendable, Hashable {
        case best = 0
        case realized = 1
        case estimated = 2
    }

    static let performanceNames: Set<String> = [
        "roc_auc", "pr_auc", "accuracy", "f1", "precision", "recall", "log_loss", "ece", "macro_f1", "weighted_f1",
        "rmse", "mae", "mape", "r2",
    ]

    static let plain: [String: AlertMetric] = [
        "drift_share": .driftShare, "dataset_drift": .datasetDrift, "feature_drift": .featureDrift,
        "feature_drift_score": .featureDriftScore, "missing_rate": .missingRate,
        "missing_rate_change": .missingRateChange, "out_of_range_share": .outOfRangeShare,
        "new_categories": .newCategories, "rows": .rows, "late_rows": .lateRows, "performance_drop": .performanceDrop,
        "idle_windows": .idleWindows,
    ]

    /// Every name a spec may use, for messages.
    public static var names: [String] {
        (plain.keys.sorted() + performanceNames.sorted().flatMap { [$0, "realized_\($0)", "estimated_\($0)"] })
    }

    /// The metric a spec names, or nil for an unknown name.
    public init?(name: String) {
        if let metric = Self.plain[name] {
            self = metric
            return
        }
        for (prefix, source) in [("realized_", PerformanceSource.realized), ("estimated_", .estimated)]
        where name.hasPrefix(prefix) {
            let base = String(name.dropFirst(prefix.count))
            guard Self.performanceNames.contains(base) else { return nil }
            self = .performance(base, source)
            return
        }
        guard Self.performanceNames.contains(name) else { return nil }
        self = .performance(name, .best)
    }

    public var name: String {
        switch self {
        case .performance(let base, .best): base
        case .performance(let base, .realized): "realized_\(base)"
        case .performance(let base, .estimated): "estimated_\(base)"
        default: Self.plain.first { $0.value == self }!.key
        }
    }

    /// Whether the metric is read per feature (a rule may name one).
    public var isPerFeature: Bool {
        switch self {
        case .featureDrift, .featureDriftScore, .missingRate, .missingRateChange, .outOfRangeShare, .newCategories:
            true
        default: false
        }
    }
}
