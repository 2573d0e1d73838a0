/// Which drift measure decides a column's verdict.
public enum DriftMethod: String, Sendable, Hashable, CaseIterable {
    /// Choose per column type and reference size (see ``DriftOptions``): KS (numeric) or
    /// chi-square (categorical) p-values for ≤ 1,000 reference values; normalized Wasserstein
    /// (numeric) or Jensen–Shannon (categorical) distances above that. Numeric columns with at
    /// most 5 distinct values (reference ∪ current) are tested as categorical.
    case auto
    /// Kolmogorov–Smirnov p-value (numeric only; categorical columns fall back to `auto`).
    case ks
    /// Population Stability Index.
    case psi
    /// Jensen–Shannon distance, natural log by default (``DriftOptions/jsBase``).
    case js
    /// Wasserstein-1 distance divided by the reference standard deviation (numeric only).
    case wasserstein
    /// Chi-square test of homogeneity p-value (numeric columns use the quantile bins).
    case chi2
    /// Hellinger distance.
    case hellinger

    /// True when the score is a p-value (drift when score < threshold); otherwise the score is
    /// a distance (drift when score ≥ threshold).
    public var isPValue: Bool { self == .ks || self == .chi2 }
}

/// The logarithm base of the Jensen–Shannon distance.
public enum JensenShannonBase: String, Sendable, Hashable, CaseIterable {
    /// Natural log, 0…√ln 2 ≈ 0.833: SciPy's `jensenshannon` default and Evidently's.
    case e
    /// Base 2, 0…1: 1/√ln 2 ≈ 1.20 times the natural-log distance.
    case two = "2"
}

/// Parameters of the drift computation; the defaults follow Evidently's DataDriftPreset.
public struct DriftOptions: Sendable, Hashable {
    /// Number of reference-quantile bins for PSI, JS, Hellinger and binned chi-square on numeric
    /// columns. 10 (deciles) is the convention the usual PSI thresholds were calibrated on, and
    /// keeps each reference bin at 10 % of the mass, ten times the sketch's rank error.
    public var binCount = 10
    /// Replacement for empty bin shares in PSI.
    public var smoothing = 1e-4
    /// Reference sizes up to this use p-value tests in `auto`.
    public var smallSampleLimit: UInt64 = 1000
    /// Numeric columns with at most this many distinct values are tested as categorical.
    public var discreteLimit = 5
    public var pValueThreshold = 0.05
    public var psiThreshold = 0.1
    public var jsThreshold = 0.1
    /// Log base of the Jensen–Shannon distance; the natural log makes the 0.1 threshold flag the
    /// same columns as SciPy's default and Evidently.
    public var jsBase = JensenShannonBase.e
    public var wassersteinThreshold = 0.1
    public var hellingerThreshold = 0.1
    /// The dataset drifts when at least this share of columns drift.
    public var datasetDriftShare = 0.5

    public init() {}

    public func threshold(for method: DriftMethod) -> Double {
        switch method {
        case .auto, .ks, .chi2: return pValueThreshold
        case .psi: return psiThreshold
        case .js: return jsThreshold
        case .wasserstein: return wassersteinThreshold
        case .hellinger: return hellingerThreshold
        }
    }
}
