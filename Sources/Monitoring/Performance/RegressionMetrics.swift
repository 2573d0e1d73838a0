/// Mergeable state of a regression model's performance: error sums, the actual values'
/// moments (for R²) and KLL sketches of the signed error `predicted − actual` and of the
/// absolute error (quantiles within 1 % rank error).
public struct RegressionState: Sendable, Hashable {
    public internal(set) var count: UInt64 = 0
    public internal(set) var absoluteErrorSum = 0.0
    public internal(set) var squaredErrorSum = 0.0
    public internal(set) var absolutePercentageErrorSum = 0.0
    /// Moments of the actual values (their M2 is R²'s total sum of squares).
    public internal(set) var actual = MomentStats()
    public internal(set) var errors = QuantileSketch()
    public internal(set) var absoluteErrors = QuantileSketch()

    /// MAPE's denominator floor, `max(|actual|, ε)` with ε = 2.22e-16 (scikit-learn).
    public static let percentageEpsilon = Double.ulpOfOne

    public init() {}

    /// Adds one pair; pairs with a non-finite value are ignored (returns `false`).
    @discardableResult
    public mutating func add(actual y: Double, predicted yhat: Double) -> Bool {
        guard y.isFinite, yhat.isFinite else { return false }
        let e = yhat - y
        count &+= 1
        absoluteErrorSum += Swift.abs(e)
        squaredErrorSum += e * e
        absolutePercentageErrorSum += Swift.abs(e) / Swift.max(Swift.abs(y), Self.percentageEpsilon)
        actual.add(y)
        errors.add(e)
        absoluteErrors.add(Swift.abs(e))
        return true
    }

    public mutating func merge(_ other: RegressionState) {
        count &+= other.count
        absoluteErrorSum += other.absoluteErrorSum
        squaredErrorSum += other.squaredErrorSum
        absolutePercentageErrorSum += other.absolutePercentageErrorSum
        actual.merge(other.actual)
        errors.merge(other.errors)
        absoluteErrors.merge(other.absoluteErrors)
    }

    public var metrics: RegressionMetrics { RegressionMetrics(self) }
}

/// Regression metrics with scikit-learn's definitions; all 0 when empty.
public struct RegressionMetrics: Sendable, Hashable {
    public var count: UInt64
    public var mae: Double
    public var rmse: Double
    /// Mean |e| / max(|y|, ε), as a fraction (not percent).
    public var mape: Double
    /// 1 − SS_res/SS_tot; 1 when both are 0, 0 when only SS_tot is 0 (scikit-learn's
    /// `force_finite`).
    public var r2: Double
    /// Quantiles 0.5, 0.9, 0.99 of the signed error `predicted − actual` (rank error ≤ 1 %).
    public var errorP50: Double
    public var errorP90: Double
    public var errorP99: Double
    /// Quantiles of the absolute error.
    public var absoluteErrorP50: Double
    public var absoluteErrorP90: Double
    public var absoluteErrorP99: Double

    init(_ s: RegressionState) {
        count = s.count
        let n = Double(s.count)
        guard s.count > 0 else {
            mae = 0
            rmse = 0
            mape = 0
            r2 = 0
            errorP50 = 0
            errorP90 = 0
            errorP99 = 0
            absoluteErrorP50 = 0
            absoluteErrorP90 = 0
            absoluteErrorP99 = 0
            return
        }
        mae = s.absoluteErrorSum / n
        rmse = (s.squaredErrorSum / n).squareRoot()
        mape = s.absolutePercentageErrorSum / n
        let ssTot = s.actual.m2
        if ssTot > 0 {
            r2 = 1 - s.squaredErrorSum / ssTot
        } else {
            r2 = s.squaredErrorSum == 0 ? 1 : 0
        }
        let q = s.errors.quantiles([0.5, 0.9, 0.99])
        errorP50 = q[0]
        errorP90 = q[1]
        errorP99 = q[2]
        let a = s.absoluteErrors.quantiles([0.5, 0.9, 0.99])
        absoluteErrorP50 = a[0]
        absoluteErrorP90 = a[1]
        absoluteErrorP99 = a[2]
    }
}
