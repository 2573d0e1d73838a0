/// Exact, mergeable summary moments of a numeric column: count, missing, non-finite, min, max,
/// mean and variance.
///
/// Mean and variance use Welford's update and Chan et al.'s parallel merge, so merging the
/// stats of two windows equals (up to floating-point rounding) the stats of their union.
/// `missing` counts NaN values (the wire encoding of "no value"); `nonFinite` counts ±infinity,
/// which are kept out of the moments so one bad value cannot poison a window's mean.
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
    /// Sum of squared deviations from the mean (M2 in Welford's notation).
    public private(set) var m2: Double = 0

    public init() {}

    /// Restores stats from their stored parts (see ``parts``).
    public init(count: UInt64, missing: UInt64, nonFinite: UInt64, min: Double, max: Double, mean: Double, m2: Double) {
        self.count = count
        self.missing = missing
        self.nonFinite = nonFinite
        self.min = min
        self.max = max
        self.mean = mean
        self.m2 = m2
    }

    /// Population variance; 0 when fewer than two values.
    public var variance: Double { count > 1 ? m2 / Double(count) : 0 }
    /// Sample variance (n - 1 denominator); 0 when fewer than two values.
    public var sampleVariance: Double { count > 1 ? m2 / Double(count - 1) : 0 }
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
        if x < min { min = x }
        if x > max { max = x }
        let delta = x - mean
        mean += delta / Double(count)
        m2 += delta * (x - mean)
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
            m2 = other.m2
            return
        }
        let n1 = Double(count)
        let n2 = Double(other.count)
        let n = n1 + n2
        let delta = other.mean - mean
        mean += delta * n2 / n
        m2 += other.m2 + delta * delta * n1 * n2 / n
        count += other.count
        if other.min < min { min = other.min }
        if other.max > max { max = other.max }
    }
}
