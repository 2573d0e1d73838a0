/// Exact, mergeable summary moments of a numeric column: count, missing, non-finite, min, max,
/// mean and variance.
///
/// Mean and variance use Welford's update and Chan et al.'s parallel merge, so merging the
/// stats of two windows equals (up to floating-point rounding) the stats of their union.
/// `missing` counts NaN values (the wire encoding of "no value"); `nonFinite` counts ±infinity,
/// which are kept out of the moments so one bad value cannot poison a window's mean.
///
/// Any finite input keeps every stored field finite and accurate. For ordinary data (values
/// within ±2^448 ≈ 7.3e134 that are not all within 2^-448 of each other) the arithmetic is plain
/// Welford/Chan. Otherwise a deviation squared could overflow (and `x - mean` itself can, for
/// x = 1e308 and mean = -1e308) or underflow (values spread by 1e-300), so values, the mean and
/// deviations are measured in units of 2^``scale``, derived from `min` and `max` so that the
/// scaled range lies in [1, 2) (or, for a constant column, the scaled values lie below 2^448).
/// Scaling by a power of two is exact, so this is the same Welford/Chan arithmetic in another unit;
/// only values too small to matter against the range (below ~2^-970 of it) can lose bits.
///
/// M2 is kept as ``scaledM2`` = M2 / 4^``scale``. The mean is always representable (it lies within
/// `min...max`), and so is the population ``standardDeviation`` (at most (max - min) / 2, give or
/// take subnormal rounding). `m2`, ``variance`` and ``sampleVariance`` are derived as a `Double`:
/// `+infinity` exactly when the true value exceeds `Double.greatestFiniteMagnitude` (values ±1e308
/// have variance ≈ 1e616), and 0 or subnormal when it is below the smallest `Double`. ``scaledM2``
/// and ``scale`` carry the figure for callers that need it outside the `Double` range.
public struct MomentStats: Sendable, Hashable {
    /// Finite values seen.
    public private(set) var count: UInt64 = 0
    /// Missing values (NaN) seen.
    public private(set) var missing: UInt64 = 0
    /// Infinite values seen (counted, kept out of min/max/mean/variance).
    public private(set) var nonFinite: UInt64 = 0
    public private(set) var min: Double = .infinity
    public private(set) var max: Double = -.infinity
    public private(set) var mean: Double = 0
    /// Sum of squared deviations from the mean (M2 in Welford's notation) divided by 4^``scale``.
    public private(set) var scaledM2: Double = 0

    /// Ordinary data needs no scaling: with magnitudes below 2^448 a deviation is below 2^449, its
    /// square below 2^898 and M2 below 2^962 for up to 2^64 values; with a range of at least
    /// 2^-448, M2 ≥ range² / 2 is far above the subnormals.
    static let unscaledLimit = 0x1p448
    static let unscaledMinimumRange = 0x1p-448

    public init() {}

    /// Restores stats from their stored parts.
    /// - Parameters:
    ///   - m2: M2 / 4^s, where s is the ``scale`` implied by `min` and `max` (so plain M2 whenever
    ///     all values lie within ±2^448).
    public init(count: UInt64, missing: UInt64, nonFinite: UInt64, min: Double, max: Double, mean: Double, m2: Double) {
        self.count = count
        self.missing = missing
        self.nonFinite = nonFinite
        self.min = min
        self.max = max
        self.mean = mean
        self.scaledM2 = m2
    }

    /// log2 of the unit in which values and deviations are measured: 0 for ordinary data (see the
    /// type's notes), otherwise derived from `min` and `max` (between -1074 and 1024).
    public var scale: Int { count > 0 ? Self.scale(min: min, max: max) : 0 }

    /// Sum of squared deviations from the mean (M2); `+infinity` when it exceeds the `Double` range.
    public var m2: Double { Self.scaled(scaledM2, by: 2 * scale) }

    /// Population variance; 0 when fewer than two values, `+infinity` when beyond the `Double` range.
    public var variance: Double { count > 1 ? Self.scaled(scaledM2 / Double(count), by: 2 * scale) : 0 }
    /// Sample variance (n - 1 denominator); 0 when fewer than two values, `+infinity` when beyond
    /// the `Double` range.
    public var sampleVariance: Double { count > 1 ? Self.scaled(scaledM2 / Double(count - 1), by: 2 * scale) : 0 }
    /// Population standard deviation; 0 when fewer than two values. Always finite: it is at most
    /// (max - min) / 2.
    public var standardDeviation: Double {
        guard count > 1 else { return 0 }
        let std = Self.scaled((scaledM2 / Double(count)).squareRoot(), by: scale)
        return Swift.min(std, max / 2 - min / 2)
    }
    /// Sample standard deviation (n - 1 denominator); 0 when fewer than two values. Computed in the
    /// stats' own scale, so it is `+infinity` only when it exceeds the `Double` range itself.
    public var sampleStandardDeviation: Double {
        guard count > 1 else { return 0 }
        return Self.scaled((scaledM2 / Double(count - 1)).squareRoot(), by: scale)
    }
    /// All values offered, including missing and non-finite ones.
    public var total: UInt64 { count + missing + nonFinite }

    // Not @inlinable: the stored properties have private setters. Whole-module optimization inlines it here.
    public mutating func add(_ x: Double) {
        if x.isNaN {
            missing &+= 1
            return
        }
        if !x.isFinite {
            nonFinite &+= 1
            return
        }
        count &+= 1
        // Fast path: the scale is 0 before and after (the old range is ordinary and x keeps the
        // magnitudes below the limit; the range can only grow).
        guard x.magnitude < Self.unscaledLimit, min > -Self.unscaledLimit, max < Self.unscaledLimit,
            max - min >= Self.unscaledMinimumRange
        else {
            addScaled(x)
            return
        }
        if x < min { min = x }
        if x > max { max = x }
        let delta = x - mean
        mean += delta / Double(count)
        scaledM2 += delta * (x - mean)
    }

    /// Welford's update in units of 2^scale; `count` already includes `x`.
    private mutating func addScaled(_ x: Double) {
        let old = Self.scale(min: min, max: max)
        if x < min { min = x }
        if x > max { max = x }
        let s = Self.scale(min: min, max: max)
        let xs = Self.scaled(x, by: -s)
        let ms = Self.scaled(mean, by: -s)
        let delta = xs - ms
        let newMean = ms + delta / Double(count)
        scaledM2 = Self.scaled(scaledM2, by: 2 * (old - s)) + delta * (xs - newMean)
        mean = clamped(Self.scaled(newMean, by: s))
    }

    /// Counts one missing value (for example a null in a JSON row).
    public mutating func addMissing(_ n: UInt64 = 1) {
        missing &+= n
    }

    public mutating func merge(_ other: MomentStats) {
        missing &+= other.missing
        nonFinite &+= other.nonFinite
        guard other.count > 0 else { return }
        guard count > 0 else {
            count = other.count
            min = other.min
            max = other.max
            mean = other.mean
            scaledM2 = other.scaledM2
            return
        }
        let s1 = scale, s2 = other.scale
        if other.min < min { min = other.min }
        if other.max > max { max = other.max }
        let s = Self.scale(min: min, max: max)
        let n1 = Double(count)
        let n2 = Double(other.count)
        let n = n1 + n2
        let m1 = Self.scaled(mean, by: -s)
        let delta = Self.scaled(other.mean, by: -s) - m1
        let a = Self.scaled(scaledM2, by: 2 * (s1 - s)), b = Self.scaled(other.scaledM2, by: 2 * (s2 - s))
        // n1 * n2 / n ≤ min(n1, n2), so the product cannot overflow where delta² does not.
        scaledM2 = a + b + delta * delta * (n1 * n2 / n)
        mean = clamped(Self.scaled(m1 + delta * n2 / n, by: s))
        count += other.count
    }

    /// The mean lies within min...max; rounding must not carry it out (or past the `Double` range).
    private func clamped(_ m: Double) -> Double { Swift.min(Swift.max(m, min), max) }

    /// The ``scale`` for finite values spanning `min...max` (0 when empty). Never decreases as the
    /// span grows, except from a constant span (whose M2 is exactly 0).
    static func scale(min: Double, max: Double) -> Int {
        let magnitude = Swift.max(-min, max)
        guard max > min else {
            return magnitude < unscaledLimit ? 0 : Int(magnitude.exponent) - 447
        }
        guard magnitude < unscaledLimit else {
            // The range may overflow; halving is exact here (it is at least 2^-53 of the magnitude).
            return Int((max / 2 - min / 2).exponent) + 1
        }
        let range = max - min
        return range >= unscaledMinimumRange ? 0 : Int(range.exponent)
    }

    /// `x` × 2^`power`, exact unless the result leaves the normal range.
    static func scaled(_ x: Double, by power: Int) -> Double {
        power == 0 ? x : Double(sign: .plus, exponent: power, significand: x)
    }
}
