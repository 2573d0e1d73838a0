/// A feature's declared type in a model spec (booleans are profiled as categories).
public enum FeatureType: String, Sendable, Hashable, CaseIterable {
    case numeric
    case categorical
    case boolean

    /// The profile type values of this feature have.
    public var profileType: ColumnType { self == .numeric ? .numeric : .categorical }
}

/// The measure and threshold that decide one column's drift verdict.
public struct DriftRule: Sendable, Hashable {
    public var method: DriftMethod
    /// Replaces the method's default threshold from ``DriftOptions``. With `auto` it applies to
    /// the distance measures auto picks for large references (Wasserstein, Jensen–Shannon); the
    /// p-value tests it picks for small ones keep ``DriftOptions/pValueThreshold``.
    public var threshold: Double?

    public init(method: DriftMethod = .auto, threshold: Double? = nil) {
        self.method = method
        self.threshold = threshold
    }

    /// `base` with this rule's threshold applied.
    func options(_ base: DriftOptions) -> DriftOptions {
        guard let threshold else { return base }
        var o = base
        switch method {
        case .auto:
            o.wassersteinThreshold = threshold
            o.jsThreshold = threshold
        case .ks, .chi2: o.pValueThreshold = threshold
        case .psi: o.psiThreshold = threshold
        case .js: o.jsThreshold = threshold
        case .wasserstein: o.wassersteinThreshold = threshold
        case .hellinger: o.hellingerThreshold = threshold
        }
        return o
    }
}

/// What the spec declares about one column.
public struct FeatureSpec: Sendable, Hashable {
    public var name: String
    public var type: FeatureType?
    /// Values outside this range are counted (``FeatureResult/outsideSpecRangeShare``).
    public var range: ClosedRange<Double>?
    /// Overrides ``MonitorConfig/drift`` for this column.
    public var drift: DriftRule?

    public init(name: String, type: FeatureType? = nil, range: ClosedRange<Double>? = nil, drift: DriftRule? = nil) {
        self.name = name
        self.type = type
        self.range = range
        self.drift = drift
    }
}

/// The per-model configuration a window is evaluated with.
public struct MonitorConfig: Sendable, Hashable {
    /// Declared features, in spec order; empty means "the reference's columns" (inferred schema).
    public var features: [FeatureSpec]
    public var prediction: FeatureSpec?
    /// Columns profiled but neither features nor schema changes (for example segment columns
    /// that are not features).
    public var ignoredColumns: [String]
    /// The default rule for every column.
    public var drift: DriftRule
    public var options: DriftOptions

    public init(
        features: [FeatureSpec] = [], prediction: FeatureSpec? = nil, ignoredColumns: [String] = [],
        drift: DriftRule = DriftRule(), options: DriftOptions = DriftOptions()
    ) {
        self.features = features
        self.prediction = prediction
        self.ignoredColumns = ignoredColumns
        self.drift = drift
        self.options = options
    }
}

extension WindowResult {
    /// Evaluates a window against its reference.
    ///
    /// Features are the declared ones, or without a declaration the reference's columns (then the
    /// window's own when there is no reference either). Drift needs the column on both sides;
    /// quality figures need only the window. Volume compares the rows with the reference's rate.
    /// - Parameters:
    ///   - window: a closed window, or an open one (the result is then marked open).
    ///   - reference: the baseline, or `nil` (drift and changes are then left out).
    public static func evaluate(
        _ window: WindowSnapshot, reference: ReferenceProfile?, config: MonitorConfig
    ) -> WindowResult {
        var byName: [String: ColumnProfile] = [:]
        for c in window.columns where byName[c.name] == nil { byName[c.name] = c }
        var referenceByName: [String: ColumnProfile] = [:]
        for c in reference?.columns ?? [] where referenceByName[c.name] == nil { referenceByName[c.name] = c }

        let specs: [FeatureSpec]
        if !config.features.isEmpty {
            specs = config.features
        } else {
            specs = (reference?.columns ?? window.columns).map { FeatureSpec(name: $0.name) }
        }
        // Attribution columns (`shap.<feature>`) are no features: they give the attributions below.
        let attributionColumns = (window.columns + (reference?.columns ?? [])).map(\.name).filter {
            $0.hasPrefix(AttributionResult.columnPrefix)
        }
        let ignored = Set(config.ignoredColumns).union(config.prediction.map { [$0.name] } ?? [])
            .union(attributionColumns)
        var result = WindowResult(window: window)
        // Absent until a row carried a label (a label column of missing values only adds none).
        if let performance = window.performance, performance.labelledRows + performance.unusableRows > 0 {
            result.performance = performance.result
            result.performanceState = performance
        }
        // Estimated from the scores once the reference holds labelled ones of both classes.
        if let scores = window.scores, let labelled = reference?.labelled,
            let estimator = PerformanceEstimator(reference: labelled, threshold: scores.threshold)
        {
            let estimated = estimator.estimate(scores)
            if !estimated.isEmpty {
                if result.performance == nil { result.performance = WindowPerformance(metrics: [], labelledRows: 0) }
                result.performance!.estimated = estimated
            }
        }
        var schema = SchemaChange()
        for spec in specs where !ignored.contains(spec.name) {
            guard let current = byName[spec.name] else {
                schema.missing.append(spec.name)
                continue
            }
            let ref = referenceByName[spec.name]
            let expected = spec.type?.profileType ?? ref?.type
            if let expected, expected != current.type { schema.changedType.append(spec.name) }
            result.features.append(FeatureResult(current, reference: ref, spec: spec, config: config))
        }
        let expectedNames = Set(specs.map(\.name))
        schema.added = window.columns.map(\.name).filter { !expectedNames.contains($0) && !ignored.contains($0) }
        result.schema = schema

        if let spec = config.prediction ?? window.prediction.map({ FeatureSpec(name: $0.name) }),
            let current = window.prediction
        {
            result.prediction = FeatureResult(current, reference: reference?.prediction, spec: spec, config: config)
        }

        let compared = result.features.filter { $0.score != nil }
        result.driftedCount = compared.filter(\.drift).count
        result.driftShare = compared.isEmpty ? 0 : Double(result.driftedCount) / Double(compared.count)
        result.datasetDrift = !compared.isEmpty && result.driftShare >= config.options.datasetDriftShare
        if let expected = reference?.expectedRows(perWindowOf: window.endMs - window.startMs) {
            result.expectedRows = expected
        }
        for column in window.columns where column.name.hasPrefix(AttributionResult.columnPrefix) {
            guard let mean = column.meanAbsolute else { continue }
            result.attributions.append(
                AttributionResult(
                    feature: String(column.name.dropFirst(AttributionResult.columnPrefix.count)), meanAbsolute: mean,
                    referenceMeanAbsolute: referenceByName[column.name]?.meanAbsolute))
        }
        return result
    }
}

extension FeatureResult {
    init(_ current: ColumnProfile, reference: ColumnProfile?, spec: FeatureSpec, config: MonitorConfig) {
        // Numeric ranges are measured here with one scan of the sketch (no sorted view), so
        // DataQuality gets the reference only for categorical columns.
        let numeric: NumericProfile?
        if case .numeric(let p) = current.content { numeric = p } else { numeric = nil }
        let quality = DataQuality.column(current, reference: numeric == nil ? reference : nil)
        self.init(name: current.name, type: current.type)
        values = current.count
        missingRate = quality.missingRate
        typeMismatches = quality.typeMismatches
        nonFinite = quality.nonFinite
        if let numeric, numeric.moments.count > 0 {
            if case .numeric(let r)? = reference?.content, r.moments.count > 0 {
                outsideReferenceRangeShare = numeric.shareOutside(r.moments.min...r.moments.max)
            }
            if let range = spec.range { outsideSpecRangeShare = numeric.shareOutside(range) }
        }
        newCategories = quality.newCategories.map(UInt64.init)
        newCategoryValues = quality.newCategoryValues
        guard let reference else { return }
        let referenceMissingRate = DataQuality.column(reference).missingRate
        missingRateChange = missingRate - referenceMissingRate
        let rule = spec.drift ?? config.drift
        let drift = ColumnDrift.compute(
            reference: reference, current: current, method: rule.method, options: rule.options(config.options))
        method = drift.method
        score = drift.score
        threshold = drift.threshold
        self.drift = drift.drift
        note = drift.note
    }
}

extension ColumnProfile {
    /// The mean absolute value of a numeric column's finite values (from its exact values while
    /// few, else its quantile sketch); nil for a categorical or empty column.
    var meanAbsolute: Double? {
        guard case .numeric(let p) = content, p.moments.count > 0 else { return nil }
        let d = p.distribution
        guard d.totalWeight > 0 else { return nil }
        var sum = 0.0, below = 0.0
        for (v, c) in zip(d.values, d.cumulative) {
            sum += abs(v) * (c - below)
            below = c
        }
        return sum / d.totalWeight
    }
}

extension NumericProfile {
    /// Estimated share of finite values outside `range`: the retained sketch weight below and
    /// above it, in one pass over the retained items (the same estimate as
    /// ``countOutside(_:)`` divided by the count, without building the sorted view; exact when
    /// `range` covers min...max).
    func shareOutside(_ range: ClosedRange<Double>) -> Double {
        guard moments.count > 0 else { return 0 }
        if moments.min >= range.lowerBound && moments.max <= range.upperBound { return 0 }
        if isSmall { return countOutside(range) / Double(moments.count) }  // exact, from the table
        let s = sketch
        var outside = 0.0, total = 0.0
        s.items.withUnsafeBufferPointer { items in
            for level in 0..<s.numLevels {
                let weight = Double(UInt64(1) << UInt64(level))
                var n = 0
                for i in s.levelStart[level]..<s.levelStart[level + 1] {
                    let x = items[i]
                    if x < range.lowerBound || x > range.upperBound { n += 1 }
                }
                outside += Double(n) * weight
                total += Double(s.levelStart[level + 1] - s.levelStart[level]) * weight
            }
        }
        return total > 0 ? outside / total : 0
    }
}
