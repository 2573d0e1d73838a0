/// The drift of one column between a reference profile and a current profile: every measure
/// that applies to the column type, the method that decided, its score and threshold, and the
/// verdict. Formulas and binning are documented in docs/drift.md and on ``DriftMeasures``.
public struct ColumnDrift: Sendable, Hashable {
    public var name: String
    public var type: ColumnType
    /// The method that decided (never `.auto`: the method `auto` chose).
    public var method: DriftMethod
    /// The deciding measure's value (a p-value for `ks`/`chi2`); `nil` when either side is empty.
    public var score: Double?
    public var threshold: Double
    public var drift: Bool
    /// Non-missing values on each side (the sample sizes the tests use).
    public var referenceCount: UInt64
    public var currentCount: UInt64

    /// Kolmogorov–Smirnov statistic and asymptotic two-sided p-value (numeric).
    public var ks: Double?
    public var ksPValue: Double?
    /// PSI over reference-quantile bins (numeric) or categories.
    public var psi: Double?
    /// Jensen–Shannon distance in ``DriftOptions/jsBase`` (natural log by default).
    public var js: Double?
    /// Wasserstein-1 distance divided by the reference standard deviation (numeric).
    public var wasserstein: Double?
    public var hellinger: Double?
    /// Chi-square homogeneity statistic, p-value and degrees of freedom.
    public var chi2: Double?
    public var chi2PValue: Double?
    public var chi2DegreesOfFreedom: Int?
    /// Share of current values whose category never appears in the reference (categorical).
    public var unseenShare: Double?
    /// Why a method was substituted or a score is missing.
    public var note: String?

    /// Computes the drift of one column.
    /// - Parameters:
    ///   - reference: the baseline profile; if either side is categorical both are compared as
    ///     categorical.
    ///   - method: the deciding measure (`auto` chooses as described on ``DriftMethod/auto``).
    public static func compute(
        reference: ColumnProfile, current: ColumnProfile,
        method: DriftMethod = .auto, options: DriftOptions = DriftOptions()
    ) -> ColumnDrift {
        var result = ColumnDrift(
            name: reference.name, type: .numeric, method: method, score: nil,
            threshold: options.threshold(for: method), drift: false,
            referenceCount: reference.count, currentCount: current.count)
        if case .numeric(let r) = reference.content, case .numeric(let c) = current.content {
            result.computeNumeric(r, c, method: method, options: options)
        } else {
            result.type = .categorical
            result.computeCategorical(reference.asCategorical, current.asCategorical, method: method, options: options)
        }
        return result
    }

    private mutating func computeNumeric(
        _ r: NumericProfile, _ c: NumericProfile, method: DriftMethod, options: DriftOptions
    ) {
        let nr = r.moments.count, nc = c.moments.count
        let discrete = Self.pooledDistinct(r, c, limit: options.discreteLimit)
        var chosen = method
        if method == .auto {
            if discrete != nil {
                chosen = nr <= options.smallSampleLimit ? .chi2 : .js
            } else {
                chosen = nr <= options.smallSampleLimit ? .ks : .wasserstein
            }
        }
        guard nr > 0, nc > 0 else { return finishEmpty(chosen, options) }

        // Exact from the tables of distinct values where both sides have one (integer-like columns).
        let rd = r.distribution, cd = c.distribution
        let d = DriftMeasures.kolmogorovSmirnov(rd, cd)
        ks = d
        ksPValue = PValues.kolmogorovSmirnov(statistic: d, n1: Double(nr), n2: Double(nc))
        var scale = r.moments.standardDeviation
        if !(scale > 0) {
            var pooled = r.moments
            pooled.merge(c.moments)
            scale = pooled.standardDeviation > 0 ? pooled.standardDeviation : 1
        }
        // Exact from the tables while there are, else from the digests, not the KLL items: on heavy
        // tails the KLL's uniform rank error lands where most of the area is (docs/drift.md).
        wasserstein = DriftMeasures.wasserstein(r.quantileCurve, c.quantileCurve) / scale

        let refCounts: [Double], curCounts: [Double]
        if let values = discrete {
            let rt = r.distinctValueCounts ?? [], ct = c.distinctValueCounts ?? []
            refCounts = values.map { v in Double(rt.first { $0.value == v }?.count ?? 0) }
            curCounts = values.map { v in Double(ct.first { $0.value == v }?.count ?? 0) }
        } else {
            let edges = DriftMeasures.quantileEdges(rd, bins: options.binCount)
            refCounts = DriftMeasures.binShares(rd, edges: edges).map { $0 * Double(nr) }
            curCounts = DriftMeasures.binShares(cd, edges: edges).map { $0 * Double(nc) }
        }
        applyHistogramMeasures(refCounts, curCounts, options: options)
        decide(chosen, options)
    }

    /// The sorted union of both profiles' distinct values if both are known and it has at most
    /// `limit` elements.
    static func pooledDistinct(_ r: NumericProfile, _ c: NumericProfile, limit: Int) -> [Double]? {
        guard let rt = r.distinctValueCounts, let ct = c.distinctValueCounts else { return nil }
        let union = Set(rt.map(\.value)).union(ct.map(\.value))
        return union.count <= limit ? union.sorted() : nil
    }

    private mutating func computeCategorical(
        _ r: CategoricalProfile, _ c: CategoricalProfile, method: DriftMethod, options: DriftOptions
    ) {
        let nr = r.count
        var chosen = method
        if method == .auto || method == .ks || method == .wasserstein {
            chosen = nr <= options.smallSampleLimit ? .chi2 : .js
            if method != .auto {
                note = "\(method.rawValue) does not apply to categorical columns; used \(chosen.rawValue)"
            }
        }
        guard r.count > 0, c.count > 0 else { return finishEmpty(chosen, options) }
        let (refCounts, curCounts) = Self.alignedCounts(r, c)
        applyHistogramMeasures(refCounts, curCounts, options: options)
        unseenShare = Double(c.unseenCount(against: r)) / Double(c.count)
        decide(chosen, options)
    }

    /// Counts per category over the union of both summaries (sorted by category), plus one
    /// "other" cell holding the mass not in either summary when a summary has overflowed.
    static func alignedCounts(_ r: CategoricalProfile, _ c: CategoricalProfile) -> ([Double], [Double]) {
        let rc = r.frequent.counts, cc = c.frequent.counts
        let keys = Set(rc.keys).union(cc.keys).sorted()
        var refCounts = keys.map { Double(rc[$0] ?? 0) }
        var curCounts = keys.map { Double(cc[$0] ?? 0) }
        let refOther = Double(r.count) - refCounts.reduce(0, +)
        let curOther = Double(c.count) - curCounts.reduce(0, +)
        if refOther > 0 || curOther > 0 {
            refCounts.append(Swift.max(refOther, 0))
            curCounts.append(Swift.max(curOther, 0))
        }
        return (refCounts, curCounts)
    }

    private mutating func applyHistogramMeasures(_ r: [Double], _ c: [Double], options: DriftOptions) {
        let sr = r.reduce(0, +), sc = c.reduce(0, +)
        let rs = r.map { $0 / sr }, cs = c.map { $0 / sc }
        psi = DriftMeasures.psi(reference: rs, current: cs, smoothing: options.smoothing)
        js = DriftMeasures.jensenShannon(rs, cs, base: options.jsBase)
        hellinger = DriftMeasures.hellinger(rs, cs)
        let test = DriftMeasures.chiSquare(reference: r, current: c)
        chi2 = test.statistic
        chi2PValue = test.pValue
        chi2DegreesOfFreedom = test.degreesOfFreedom
    }

    private mutating func decide(_ chosen: DriftMethod, _ options: DriftOptions) {
        method = chosen
        threshold = options.threshold(for: chosen)
        switch chosen {
        case .auto: score = nil
        case .ks: score = ksPValue
        case .chi2: score = chi2PValue
        case .psi: score = psi
        case .js: score = js
        case .wasserstein: score = wasserstein
        case .hellinger: score = hellinger
        }
        guard let s = score else { return }
        drift = chosen.isPValue ? s < threshold : s >= threshold
    }

    private mutating func finishEmpty(_ chosen: DriftMethod, _ options: DriftOptions) {
        method = chosen
        threshold = options.threshold(for: chosen)
        note = referenceCount == 0 ? "no values in the reference" : "no values in the current data"
    }
}
