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
        let ignored = Set(config.ignoredColumns).union(config.prediction.map { [$0.name] } ?? [])
        var result = WindowResult(window: window)
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
        return result
    }
}

extension FeatureResult {
    init(_ current: ColumnProfile, reference: ColumnProfile?, spec: FeatureSpec, config: MonitorConfig) {
        let quality = DataQuality.column(current, reference: reference)
        self.init(name: current.name, type: current.type)
        values = current.count
        missingRate = quality.missingRate
        typeMismatches = quality.typeMismatches
        nonFinite = quality.nonFinite
        let valued = Double(current.count)
        if let out = quality.outOfRange, valued > 0 { outsideReferenceRangeShare = out / valued }
        if let range = spec.range, case .numeric(let p) = current.content, valued > 0 {
            outsideSpecRangeShare = p.countOutside(range) / valued
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
