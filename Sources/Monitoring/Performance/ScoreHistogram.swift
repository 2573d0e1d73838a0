/// Mergeable histograms of a score in [0, 1] for positive and negative examples, from which ROC
/// AUC and PR AUC (average precision) are computed without storing scores.
///
/// **Error.** Scores are bucketed into `binCount` equal bins (default 1,000; bin
/// `min(⌊score·bins⌋, bins−1)`, scores clamped to [0, 1]). The histogram values equal
/// scikit-learn's `roc_auc_score` / `average_precision_score` on the bucketed scores exactly.
/// Against the raw scores the difference is at most ``rocAUCErrorBound`` (half the share of
/// positive–negative pairs that share a bin) and ``averagePrecisionErrorBound``, both computed
/// from the data; with 1,000 bins and smooth score densities they are typically below 0.001.
public struct ScoreHistogram: Sendable, Hashable {
    public static let defaultBinCount = 1000
    public let binCount: Int
    public internal(set) var positives: [UInt64]
    public internal(set) var negatives: [UInt64]

    public init(binCount: Int = ScoreHistogram.defaultBinCount) {
        precondition(binCount >= 1)
        self.binCount = binCount
        positives = [UInt64](repeating: 0, count: binCount)
        negatives = [UInt64](repeating: 0, count: binCount)
    }

    @inline(__always)
    func bin(_ score: Double) -> Int { Self.bin(score, binCount: binCount) }

    public mutating func add(score: Double, positive: Bool) {
        let b = bin(score)
        if positive { positives[b] &+= 1 } else { negatives[b] &+= 1 }
    }

    public mutating func merge(_ other: ScoreHistogram) {
        precondition(other.binCount == binCount, "cannot merge histograms with different bin counts")
        for i in 0..<binCount {
            positives[i] &+= other.positives[i]
            negatives[i] &+= other.negatives[i]
        }
    }

    public var positiveCount: UInt64 { positives.reduce(0, &+) }
    public var negativeCount: UInt64 { negatives.reduce(0, &+) }

    /// Area under the ROC curve (Mann–Whitney U / (P·N), ties within a bin count ½); `nil`
    /// without both classes.
    public var rocAUC: Double? {
        let p = Double(positiveCount), n = Double(negativeCount)
        guard p > 0, n > 0 else { return nil }
        var below = 0.0, u = 0.0
        for b in 0..<binCount {
            let nb = Double(negatives[b])
            u += Double(positives[b]) * (below + 0.5 * nb)
            below += nb
        }
        return u / (p * n)
    }

    /// Bound on |ROC AUC from the histogram − ROC AUC of the raw scores|: ½ Σ_b pos_b·neg_b / (P·N).
    public var rocAUCErrorBound: Double {
        let p = Double(positiveCount), n = Double(negativeCount)
        guard p > 0, n > 0 else { return 0 }
        var shared = 0.0
        for b in 0..<binCount { shared += Double(positives[b]) * Double(negatives[b]) }
        return 0.5 * shared / (p * n)
    }

    /// Average precision Σ_t (R_t − R_{t−1})·P_t over thresholds at each bin, from the highest
    /// bin down (scikit-learn's definition); `nil` without positives.
    public var averagePrecision: Double? { apWithBound()?.ap }

    /// Bound on |AP from the histogram − AP of the raw scores|: for each bin, the positives' share
    /// times the range the precision can take for any order of the scores inside the bin.
    public var averagePrecisionErrorBound: Double { apWithBound()?.bound ?? 0 }

    private func apWithBound() -> (ap: Double, bound: Double)? {
        let total = Double(positiveCount)
        guard total > 0 else { return nil }
        var tp = 0.0, fp = 0.0, ap = 0.0, bound = 0.0
        for b in stride(from: binCount - 1, through: 0, by: -1) {
            let pb = Double(positives[b]), nb = Double(negatives[b])
            if pb > 0 {
                ap += pb / total * (tp + pb) / (tp + fp + pb + nb)
                let hi = Swift.max((tp + 1) / (tp + fp + 1), (tp + pb) / (tp + fp + pb))
                let lo = Swift.min((tp + 1) / (tp + fp + nb + 1), (tp + pb) / (tp + fp + nb + pb))
                bound += pb / total * (hi - lo)
            }
            tp += pb
            fp += nb
        }
        return (ap, bound)
    }
}
