/// Root-cause hints for one window (docs/performance.md, "Root-cause hints"): whether its
/// performance dropped against the reference, its features ranked by drift and by the change in
/// their attribution, and its segments ranked by their share of the errors against their share of
/// the rows.
public struct RootCause: Sendable, Hashable {
    /// The headline performance figure and the reference's.
    public struct Performance: Sendable, Hashable {
        public var metric: String
        public var value: Double
        /// From the scores (CBPE) rather than labels.
        public var estimated: Bool
        /// The labelled reference's figure, and how far below it counts as a drop (3 sampling
        /// errors at the window's rows); nil without a labelled reference.
        public var reference: Double?
        public var margin: Double?
        public var dropped: Bool
    }

    public struct FeatureHint: Sendable, Hashable {
        public var name: String
        public var drift: Bool
        public var method: DriftMethod?
        public var score: Double?
        public var threshold: Double?
        /// How far past its threshold the drift score is: 1 at the threshold, above 1 beyond it
        /// (score / threshold for distances, log p / log threshold for p-values); 0 without a score.
        public var severity: Double
        /// The feature's share of the window's mean |attribution| (nil without attributions).
        public var importance: Double?
        /// Mean |attribution| in the window and in the reference, and the relative change.
        public var attribution: Double?
        public var referenceAttribution: Double?
        public var attributionChange: Double?
        /// |attributionChange| ≥ ``RootCause/attributionShift``.
        public var attributionShifted: Bool
    }

    public struct SegmentHint: Sendable, Hashable {
        public var segment: Segment
        /// Rows the shares count (labelled rows when the figures are realized).
        public var rows: Double
        public var rowShare: Double
        /// Expected errors when estimated: rows × (1 − accuracy); realized: labelled × (1 −
        /// accuracy), or for regression the sum of absolute errors (labelled × MAE).
        public var errors: Double
        public var errorShare: Double
        /// errorShare / rowShare: above 1, the segment fails more often than the window.
        public var lift: Double
        /// The segment's own figure of the metric the errors come from.
        public var value: Double
    }

    public var performance: Performance?
    public var datasetDrift: Bool
    public var driftShare: Double
    /// Flagged features (drift or shifted attribution) first, then by impact.
    public var features: [FeatureHint]
    /// By errorShare − rowShare, largest first: the segments that hold more of the errors than of
    /// the rows.
    public var segments: [SegmentHint]
    /// What the segment figures count: "realized accuracy", "estimated accuracy", "realized mae".
    public var segmentBasis: String?

    /// A relative change of a feature's mean |attribution| at least this large is flagged.
    public static let attributionShift = 0.3

    /// Hints for `window` (a whole-model result) from `segments` (results of the same start and
    /// version, one per segment value), with `reference`, the labelled reference's scores, and
    /// `threshold` for a binary classifier's drop check.
    public static func explain(
        window: WindowResult, segments: [WindowResult], reference: ScoreHistogram?, threshold: Double?
    ) -> RootCause {
        let estimator = reference.flatMap { r in threshold.flatMap { PerformanceEstimator(reference: r, threshold: $0) }
        }
        let (basis, segmentHints) = segmentHints(window: window, segments: segments)
        return RootCause(
            performance: performance(window, estimator: estimator), datasetDrift: window.datasetDrift,
            driftShare: window.driftShare, features: featureHints(window), segments: segmentHints,
            segmentBasis: basis)
    }

    /// The features of `window`, ranked.
    static func featureHints(_ window: WindowResult) -> [FeatureHint] {
        let attributions = Dictionary(window.attributions.map { ($0.feature, $0) }) { first, _ in first }
        let total = window.attributions.reduce(0) { $0 + $1.meanAbsolute }
        func hint(_ name: String, _ f: FeatureResult?) -> FeatureHint {
            let a = attributions[name]
            let change = a?.change
            return FeatureHint(
                name: name, drift: f?.drift ?? false, method: f?.method, score: f?.score, threshold: f?.threshold,
                severity: f.map(severity) ?? 0, importance: a.flatMap { total > 0 ? $0.meanAbsolute / total : nil },
                attribution: a?.meanAbsolute, referenceAttribution: a?.referenceMeanAbsolute, attributionChange: change,
                attributionShifted: change.map { abs($0) >= attributionShift } ?? false)
        }
        var hints = window.features.map { hint($0.name, $0) }
        let named = Set(hints.map(\.name))
        hints += window.attributions.map(\.feature).filter { !named.contains($0) }.map { hint($0, nil) }
        func impact(_ h: FeatureHint) -> Double {
            h.severity * (h.importance.map { 0.5 + $0 } ?? 1) + abs(h.attributionChange ?? 0)
        }
        return hints.sorted {
            let (a, b) = ($0.drift || $0.attributionShifted, $1.drift || $1.attributionShifted)
            if a != b { return a }
            let (x, y) = (impact($0), impact($1))
            return x != y ? x > y : $0.name < $1.name
        }
    }

    /// 1 at the threshold, above it beyond: score / threshold, or log p / log threshold.
    static func severity(_ f: FeatureResult) -> Double {
        guard let score = f.score, let threshold = f.threshold, score.isFinite, threshold > 0 else { return 0 }
        if f.method?.isPValue == true {
            guard threshold < 1 else { return 0 }
            return Swift.min(Math.log(Swift.max(score, 1e-300)) / Math.log(threshold), 1_000)
        }
        return Swift.min(score / threshold, 1_000)
    }

    /// The headline figure: ROC AUC, else accuracy (realized when labelled rows exist, else
    /// estimated), else a regression's MAE; a drop only against a labelled reference.
    static func performance(_ window: WindowResult, estimator: PerformanceEstimator?) -> Performance? {
        guard let p = window.performance else { return nil }
        let realized = Dictionary(p.metrics.map { ($0.name, $0.value) }) { first, _ in first }
        let estimated = Dictionary(p.estimated.map { ($0.name, $0) }) { first, _ in first }
        for metric in ["roc_auc", "accuracy"] {
            let reference = estimator?.referenceMetrics[metric]
            if let value = realized[metric], p.labelledRows > 0 {
                let margin = estimator?.samplingError(metric, rows: Double(p.labelledRows)).map { 3 * $0 }
                return Performance(
                    metric: metric, value: value, estimated: false, reference: reference, margin: margin,
                    dropped: Self.dropped(value, reference, margin))
            }
            if let e = estimated[metric] {
                let margin = PerformanceEstimator.bandWidth * e.samplingError
                return Performance(
                    metric: metric, value: e.value, estimated: true, reference: reference, margin: margin,
                    dropped: Self.dropped(e.value, reference, margin))
            }
        }
        if let mae = realized["mae"] {
            return Performance(metric: "mae", value: mae, estimated: false, reference: nil, margin: nil, dropped: false)
        }
        return nil
    }

    private static func dropped(_ value: Double, _ reference: Double?, _ margin: Double?) -> Bool {
        guard let reference, let margin, margin.isFinite else { return false }
        return value < reference - margin
    }

    /// Each segment's share of the errors against its share of the rows, on one basis for all:
    /// realized figures when the window has labelled rows, else estimated accuracy.
    static func segmentHints(window: WindowResult, segments: [WindowResult]) -> (String?, [SegmentHint]) {
        typealias Basis = (
            name: String, rowsAndErrors: (WindowResult) -> (rows: Double, errors: Double, value: Double)?
        )
        func realized(_ r: WindowResult, _ metric: String) -> Double? {
            r.performance?.metrics.first { $0.name == metric }?.value
        }
        let bases: [Basis] = [
            (
                "realized accuracy",
                { r in
                    guard let p = r.performance, p.labelledRows > 0, let a = realized(r, "accuracy") else { return nil }
                    return (Double(p.labelledRows), Double(p.labelledRows) * (1 - a), a)
                }
            ),
            (
                "realized mae",
                { r in
                    guard let p = r.performance, p.labelledRows > 0, let m = realized(r, "mae") else { return nil }
                    return (Double(p.labelledRows), Double(p.labelledRows) * m, m)
                }
            ),
            (
                "estimated accuracy",
                { r in
                    guard let e = r.performance?.estimated.first(where: { $0.name == "accuracy" }), r.rows > 0 else {
                        return nil
                    }
                    return (Double(r.rows), Double(r.rows) * (1 - e.value), e.value)
                }
            ),
        ]
        guard let basis = bases.first(where: { $0.rowsAndErrors(window) != nil }),
            let whole = basis.rowsAndErrors(window), whole.rows > 0
        else { return (nil, []) }
        var hints: [SegmentHint] = []
        for s in segments {
            guard let segment = s.key.segment, let figures = basis.rowsAndErrors(s), figures.rows > 0 else { continue }
            let rowShare = figures.rows / whole.rows
            let errorShare = whole.errors > 0 ? figures.errors / whole.errors : 0
            hints.append(
                SegmentHint(
                    segment: segment, rows: figures.rows, rowShare: rowShare, errors: figures.errors,
                    errorShare: errorShare, lift: rowShare > 0 ? errorShare / rowShare : 0, value: figures.value))
        }
        hints.sort {
            let (a, b) = ($0.errorShare - $0.rowShare, $1.errorShare - $1.rowShare)
            return a != b
                ? a > b : ($0.segment.column, "\($0.segment.value)") < ($1.segment.column, "\($1.segment.value)")
        }
        return (basis.name, hints)
    }
}

/// A feature's mean |attribution| in a window (from its `shap.<feature>` column) and in the
/// reference.
public struct AttributionResult: Sendable, Hashable {
    public var feature: String
    public var meanAbsolute: Double
    public var referenceMeanAbsolute: Double?

    public init(feature: String, meanAbsolute: Double, referenceMeanAbsolute: Double?) {
        self.feature = feature
        self.meanAbsolute = meanAbsolute
        self.referenceMeanAbsolute = referenceMeanAbsolute
    }

    /// Relative change against the reference; nil without one (or a zero one).
    public var change: Double? {
        guard let r = referenceMeanAbsolute, r > 0 else { return nil }
        return (meanAbsolute - r) / r
    }

    /// Columns named so carry per-prediction attributions of the feature after the prefix.
    public static let columnPrefix = "shap."
}
