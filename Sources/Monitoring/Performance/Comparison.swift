import Foundation

/// A metric two model versions are compared on (`infranaut compare`; docs/performance.md).
public enum ComparedMetric: String, Sendable, Hashable, CaseIterable {
    case rocAUC = "roc_auc"
    case accuracy
    case f1
    case rmse
    case mae

    /// Whether a larger value is better.
    public var higherIsBetter: Bool { self == .rocAUC || self == .accuracy || self == .f1 }
}

/// Two versions' performance on one metric: each one's value and sample size, the difference
/// (a − b) with a 95% confidence interval, a two-sided p-value, and which version is better when
/// the difference is significant at 5%.
///
/// The versions' rows are independent samples (different traffic), so each test combines the two
/// sides' variances:
/// - accuracy: two-proportion z-test (pooled proportion for the p-value, unpooled for the
///   interval);
/// - roc_auc: DeLong's variance of each AUC, computed exactly from the score histograms (the AUC
///   of the binned scores, as reported), and a z-test on the difference;
/// - f1: the standard error of each F1 from 2,000 multinomial resamples of its confusion matrix
///   (fixed seed, so a comparison always answers the same), and a z-test;
/// - mae: Welch's t-test on the absolute errors (their mean and variance are in the state);
/// - rmse: the delta method on the mean squared error, whose variance needs the mean fourth
///   power of the errors, estimated from the errors' quantile sketch (its retained items, each
///   weighted by the values it stands for), or, when that estimate is impossible (below MSE²:
///   the sketch lost a rare large error), the bound max|e|²·MSE; a z-test.
///
/// Every test here is a large-sample approximation: each side needs at least
/// ``minimumLabelledRows`` labelled rows.
public struct VersionComparison: Sendable, Hashable {
    public struct Side: Sendable, Hashable {
        public var value: Double
        /// Labelled rows the value comes from.
        public var n: UInt64
    }

    public var metric: ComparedMetric
    public var a: Side
    public var b: Side
    /// a − b.
    public var difference: Double
    public var lower: Double
    public var upper: Double
    public var pValue: Double
    /// The test, named for people.
    public var test: String
    /// "a" or "b" when p < 0.05 (the version with the better value), nil otherwise.
    public var better: String?

    public static let significance = 0.05
    public static let minimumLabelledRows: UInt64 = 30
    static let z975 = 1.959963984540054
    static let bootstrapResamples = 2_000

    /// Compares `a` and `b` on `metric`; throws when the states cannot give it.
    public static func compare(_ a: PerformanceState, _ b: PerformanceState, on metric: ComparedMetric)
        throws(ComparisonError) -> VersionComparison
    {
        let (sa, sb) = (try side(a, metric, "a"), try side(b, metric, "b"))
        switch metric {
        case .accuracy:
            let (ca, na) = sa.correct, (cb, nb) = sb.correct
            let (pa, pb) = (ca / na, cb / nb)
            let pooled = (ca + cb) / (na + nb)
            let sePooled = (pooled * (1 - pooled) * (1 / na + 1 / nb)).squareRoot()
            let se = (pa * (1 - pa) / na + pb * (1 - pb) / nb).squareRoot()
            let p = sePooled > 0 ? 2 * normalSurvival(abs(pa - pb) / sePooled) : (pa == pb ? 1 : 0)
            return result(metric, a, b, pa, pb, se: se, p: p, test: "two-proportion z-test")
        case .rocAUC:
            let (ua, va) = try delong(sa.histogram, "a")
            let (ub, vb) = try delong(sb.histogram, "b")
            let se = (va + vb).squareRoot()
            return result(
                metric, a, b, ua, ub, se: se, p: zTest(ua - ub, se), test: "DeLong z-test (independent samples)")
        case .f1:
            // Seeds from the counts: the same comparison, either way round, answers the same.
            let (fa, va) = bootstrapF1(sa.confusion, seed: seed(sa.confusion))
            let (fb, vb) = bootstrapF1(sb.confusion, seed: seed(sb.confusion))
            let se = (va + vb).squareRoot()
            return result(
                metric, a, b, fa, fb, se: se, p: zTest(fa - fb, se), test: "z-test, bootstrap standard errors")
        case .mae:
            let (ra, rb) = (sa.regression, sb.regression)
            let (na, nb) = (Double(ra.count), Double(rb.count))
            let (ma, mb) = (ra.absoluteErrorSum / na, rb.absoluteErrorSum / nb)
            // Sample variances of |e|: (Σe² − n·mean²) / (n − 1).
            let vara = na > 1 ? Swift.max(0, ra.squaredErrorSum - na * ma * ma) / (na - 1) : 0
            let varb = nb > 1 ? Swift.max(0, rb.squaredErrorSum - nb * mb * mb) / (nb - 1) : 0
            let (qa, qb) = (vara / na, varb / nb)
            let se = (qa + qb).squareRoot()
            let df = (qa + qb) * (qa + qb) / (qa * qa / Swift.max(na - 1, 1) + qb * qb / Swift.max(nb - 1, 1))
            let t = se > 0 ? (ma - mb) / se : 0
            let p = se > 0 ? 2 * studentSurvival(abs(t), degreesOfFreedom: df) : (ma == mb ? 1 : 0)
            var out = result(metric, a, b, ma, mb, se: se, p: p, test: "Welch t-test on absolute errors")
            if se > 0, df.isFinite, out.lower.isFinite {
                let half = studentQuantile975(df) * se
                (out.lower, out.upper) = (out.difference - half, out.difference + half)
            }
            return out
        case .rmse:
            let (ra, rb) = (sa.regression, sb.regression)
            let (ea, va) = rmseAndVariance(ra)
            let (eb, vb) = rmseAndVariance(rb)
            let se = (va + vb).squareRoot()
            return result(
                metric, a, b, ea, eb, se: se, p: zTest(ea - eb, se), test: "z-test, delta-method standard errors")
        }
    }

    // MARK: Sides

    private struct Read {
        var state: PerformanceState
        var n: UInt64

        var confusion: [UInt64] { state.classification!.confusion }
        var histogram: ScoreHistogram { state.classification!.histograms[0] }
        var regression: RegressionState { state.regression! }
        var correct: (Double, Double) {
            let s = state.classification!
            let k = s.classCount
            let right = (0..<k).reduce(UInt64(0)) { $0 &+ s.confusion[$1 * k + $1] }
            return (Double(right), Double(n))
        }
    }

    private static func side(_ state: PerformanceState, _ metric: ComparedMetric, _ name: String)
        throws(ComparisonError) -> Read
    {
        let n = state.labelledRows
        switch (metric, state.task) {
        case (.accuracy, .binary), (.accuracy, .multiclass), (.f1, .binary), (.rocAUC, .binary):
            break
        case (.rmse, .regression), (.mae, .regression):
            break
        default:
            throw ComparisonError("\(metric.rawValue) does not apply to version \(name)'s task (\(state.task.name))")
        }
        guard n >= minimumLabelledRows else {
            throw ComparisonError(
                "version \(name) has \(n) labelled rows in the range; a comparison needs at least \(minimumLabelledRows)"
            )
        }
        return Read(state: state, n: n)
    }

    private static func result(
        _ metric: ComparedMetric, _ a: PerformanceState, _ b: PerformanceState, _ va: Double, _ vb: Double,
        se: Double, p: Double, test: String
    ) -> VersionComparison {
        let d = va - vb
        // Non-finite figures (an overflowed sum) prove nothing: no difference is claimed.
        let finite = d.isFinite && se.isFinite && p.isFinite
        let pValue = finite ? Swift.min(1, Swift.max(0, p)) : 1
        var better: String?
        if finite, pValue < significance, d != 0 { better = (d > 0) == metric.higherIsBetter ? "a" : "b" }
        return VersionComparison(
            metric: metric, a: Side(value: va, n: a.labelledRows), b: Side(value: vb, n: b.labelledRows),
            difference: d, lower: finite ? d - z975 * se : -.infinity, upper: finite ? d + z975 * se : .infinity,
            pValue: pValue, test: test, better: better)
    }

    private static func zTest(_ difference: Double, _ se: Double) -> Double {
        se > 0 ? 2 * normalSurvival(abs(difference) / se) : (difference == 0 ? 1 : 0)
    }

    // MARK: DeLong from a histogram

    /// The binned AUC and DeLong's variance estimate: with V₁₀(x) = P(negative < x) + ½ P(tie) for
    /// each positive and V₀₁(y) = P(positive > y) + ½ P(tie) for each negative, Var = S₁₀/m + S₀₁/n
    /// (sample variances over the m positives and n negatives). Every score in a bin shares its
    /// value, so both sums run over bins.
    static func delong(_ h: ScoreHistogram, _ name: String) throws(ComparisonError) -> (auc: Double, variance: Double) {
        let m = Double(h.positives.reduce(0, &+)), n = Double(h.negatives.reduce(0, &+))
        guard m >= 2, n >= 2 else {
            throw ComparisonError("version \(name) needs at least 2 positive and 2 negative labels for roc_auc")
        }
        var negativesBelow = 0.0
        var positivesAbove = m
        var v10: [(value: Double, count: Double)] = []
        var v01: [(value: Double, count: Double)] = []
        for bin in 0..<h.binCount {
            let (p, q) = (Double(h.positives[bin]), Double(h.negatives[bin]))
            positivesAbove -= p
            if p > 0 { v10.append(((negativesBelow + 0.5 * q) / n, p)) }
            if q > 0 { v01.append(((positivesAbove + 0.5 * p) / m, q)) }
            negativesBelow += q
        }
        let auc = v10.reduce(0) { $0 + $1.value * $1.count } / m
        func sampleVariance(_ items: [(value: Double, count: Double)], mean: Double, total: Double) -> Double {
            items.reduce(0) { $0 + $1.count * ($1.value - mean) * ($1.value - mean) } / (total - 1)
        }
        let variance = sampleVariance(v10, mean: auc, total: m) / m + sampleVariance(v01, mean: auc, total: n) / n
        return (auc, variance)
    }

    // MARK: F1 by bootstrap

    static func seed(_ counts: [UInt64]) -> UInt64 {
        counts.reduce(0x5EED) { SplitMix64.mix($0 ^ $1) }
    }

    /// F1 of class 1 and the variance of its bootstrap resamples.
    static func bootstrapF1(_ confusion: [UInt64], seed: UInt64) -> (f1: Double, variance: Double) {
        // Binary: [tn, fp, fn, tp] (actual * 2 + predicted).
        let counts = confusion.map { Double($0) }  // not `Double.init`: that picks init(bitPattern:)
        func f1(_ c: [Double]) -> Double {
            let (fp, fn, tp) = (c[1], c[2], c[3])
            return tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0
        }
        let n = counts.reduce(0, +)
        let cumulative = [counts[0], counts[0] + counts[1], counts[0] + counts[1] + counts[2]].map { $0 / n }
        var generator = SplitMix64(seed: seed)
        var sum = 0.0, squares = 0.0
        let draws = Int(n)
        for _ in 0..<bootstrapResamples {
            var c = [0.0, 0.0, 0.0, 0.0]
            if draws <= 1_000 {
                for _ in 0..<draws {
                    let u = Double.random(in: 0..<1, using: &generator)
                    c[u < cumulative[0] ? 0 : u < cumulative[1] ? 1 : u < cumulative[2] ? 2 : 3] += 1
                }
            } else {
                // Large samples: each cell's count is close to normal; draw it so and keep the total.
                var left = n
                var share = 1.0
                for cell in 0..<3 where share > 0 && left > 0 {
                    let p = Swift.min(1, Swift.max(0, counts[cell] / n / share))
                    let mean = left * p
                    let sd = (left * p * (1 - p)).squareRoot()
                    let drawn = Swift.min(left, Swift.max(0, (mean + sd * normal(&generator)).rounded()))
                    c[cell] = drawn
                    left -= drawn
                    share -= counts[cell] / n
                }
                c[3] = left
            }
            let value = f1(c)
            sum += value
            squares += value * value
        }
        let r = Double(bootstrapResamples)
        let mean = sum / r
        return (f1(counts), Swift.max(0, (squares - r * mean * mean) / (r - 1)))
    }

    private static func normal(_ generator: inout SplitMix64) -> Double {
        let u1 = Swift.max(Double.random(in: 0..<1, using: &generator), 1e-300)
        let u2 = Double.random(in: 0..<1, using: &generator)
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }

    // MARK: RMSE

    /// RMSE and its delta-method variance: Var(MSE) = (E[e⁴] − MSE²)/n, Var(RMSE) ≈ Var(MSE)/(4·MSE).
    static func rmseAndVariance(_ r: RegressionState) -> (rmse: Double, variance: Double) {
        let n = Double(r.count)
        let mse = r.squaredErrorSum / n
        var fourth = r.errors.estimatedMean { $0 * $0 * $0 * $0 }
        // E[e⁴] ≥ MSE² for any data: an estimate below it means the sketch lost the tail that
        // matters here, so the bound E[e⁴] ≤ max|e|²·MSE (max|e| is exact) stands in: wider, never
        // falsely narrow.
        if !(fourth > mse * mse) {
            let largest = Swift.max(abs(r.errors.min), abs(r.errors.max))
            fourth = largest * largest * mse
        }
        let varianceMSE = Swift.max(0, fourth - mse * mse) / n
        return (mse.squareRoot(), mse > 0 ? varianceMSE / (4 * mse) : 0)
    }

    // MARK: Distributions

    /// P(Z > z) for a standard normal Z.
    static func normalSurvival(_ z: Double) -> Double { 0.5 * Foundation.erfc(z / 2.0.squareRoot()) }

    /// P(T > t) for Student's t with `df` degrees of freedom: ½ I_{df/(df+t²)}(df/2, ½).
    static func studentSurvival(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard df.isFinite, df > 0 else { return normalSurvival(t) }
        let x = df / (df + t * t)
        let tail = 0.5 * regularizedIncompleteBeta(x, a: df / 2, b: 0.5)
        return t >= 0 ? tail : 1 - tail
    }

    /// The 97.5% quantile of Student's t, by bisection on the survival function.
    static func studentQuantile975(_ df: Double) -> Double {
        var (low, high) = (0.0, 1_000.0)
        for _ in 0..<200 {
            let mid = (low + high) / 2
            if studentSurvival(mid, degreesOfFreedom: df) > 0.025 { low = mid } else { high = mid }
        }
        return (low + high) / 2
    }

    /// I_x(a, b) by its continued fraction (modified Lentz), using the symmetry
    /// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logGammas: Double = Foundation.lgamma(a + b) - Foundation.lgamma(a) - Foundation.lgamma(b)
        let logPowers: Double = a * Foundation.log(x) + b * Foundation.log(1 - x)
        let logFront = logGammas + logPowers
        if x > (a + 1) / (a + b + 2) { return 1 - regularizedIncompleteBeta(1 - x, a: b, b: a) }
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var f = d
        for m in 1...300 {
            let m = Double(m)
            let even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            f *= d * c
            let odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            f *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return Foundation.exp(logFront) * f / a
    }
}

/// Why two versions could not be compared.
public struct ComparisonError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension PerformanceTask {
    /// The task's name in specs.
    public var name: String {
        switch self {
        case .binary: "binary-classification"
        case .multiclass: "multiclass-classification"
        case .regression: "regression"
        }
    }
}
