/// Robust anomaly score for a per-window metric series: the modified z-score of Iglewicz and
/// Hoaglin, 0.6745·(x − median)/MAD, where MAD is the median absolute deviation of the history.
///
/// Unlike a mean/standard-deviation z-score, up to half of the history can be outliers without
/// moving the median or MAD much (50 % breakdown point). When MAD is 0 (more than half the
/// history is identical) the mean absolute deviation scaled by 1.2533 (= √(π/2)) is used
/// instead; if that is 0 too, any different value scores ±infinity. The conventional alert
/// threshold is |score| > 3.5.
public enum RobustAnomaly {
    public static let defaultThreshold = 3.5

    /// Modified z-score of `value` against `history`; `nil` for an empty history.
    public static func score(_ value: Double, history: [Double]) -> Double? {
        let h = history.filter(\.isFinite)
        guard !h.isEmpty, value.isFinite else { return nil }
        let med = median(h)
        let deviations = h.map { Swift.abs($0 - med) }
        let mad = median(deviations)
        if mad > 0 { return 0.6745 * (value - med) / mad }
        let meanAD = deviations.reduce(0, +) / Double(deviations.count)
        if meanAD > 0 { return (value - med) / (1.253314 * meanAD) }
        return value == med ? 0 : (value > med ? .infinity : -.infinity)
    }

    /// Whether `value` is anomalous against `history` at `threshold`.
    public static func isAnomalous(_ value: Double, history: [Double], threshold: Double = defaultThreshold) -> Bool {
        guard let s = score(value, history: history) else { return false }
        return Swift.abs(s) > threshold
    }

    /// Median (mean of the two middle values for an even count).
    public static func median(_ values: [Double]) -> Double {
        precondition(!values.isEmpty)
        let s = values.sorted()
        let mid = s.count / 2
        return s.count % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
    }
}
