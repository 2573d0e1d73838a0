/// The scores of a binary classifier's predictions in one window, labelled or not, counted in the
/// bins of ``ScoreHistogram``: what confidence-based performance estimation (CBPE) reads.
///
/// The predicted class of a score is 1 at `score ≥ threshold`, which a bin does not tell when the
/// threshold falls inside it: ``thresholdBinAbove`` counts the rows of the threshold's bin at or
/// above it, so the expected confusion matrix is exact to the bin's calibrated probability. A
/// window keeps the threshold it opened with.
public struct PredictionScores: Sendable, Hashable {
    public let threshold: Double
    public internal(set) var counts: [UInt64]
    /// Rows in the threshold's bin whose score is at least the threshold.
    public internal(set) var thresholdBinAbove: UInt64 = 0

    public init(threshold: Double, binCount: Int = ScoreHistogram.defaultBinCount) {
        precondition(binCount >= 1)
        self.threshold = threshold
        counts = [UInt64](repeating: 0, count: binCount)
    }

    public var binCount: Int { counts.count }
    public var total: UInt64 { counts.reduce(0, &+) }
    /// The bin holding the threshold.
    public var thresholdBin: Int { ScoreHistogram.bin(threshold, binCount: binCount) }

    /// Adds one score; false (nothing added) unless it lies in [0, 1].
    @discardableResult
    public mutating func add(score: Double) -> Bool {
        guard score >= 0, score <= 1 else { return false }
        let b = ScoreHistogram.bin(score, binCount: binCount)
        counts[b] &+= 1
        if b == thresholdBin && score >= threshold { thresholdBinAbove &+= 1 }
        return true
    }

    /// Rows of bin `b` predicted positive.
    func predictedPositive(bin b: Int) -> UInt64 {
        let t = thresholdBin
        return b > t ? counts[b] : b == t ? thresholdBinAbove : 0
    }
}

/// One estimated metric with its confidence band: `value ± 3 σ`, σ the sampling error of the
/// metric on a window of this many rows, clipped to [0, 1].
public struct EstimatedMetric: Sendable, Hashable {
    public var name: String
    public var value: Double
    public var samplingError: Double
    public var lower: Double
    public var upper: Double

    public init(name: String, value: Double, samplingError: Double) {
        self.name = name
        self.value = value
        self.samplingError = samplingError
        lower = Swift.max(0, value - PerformanceEstimator.bandWidth * samplingError)
        upper = Swift.min(1, value + PerformanceEstimator.bandWidth * samplingError)
    }

    init(name: String, value: Double, samplingError: Double, lower: Double, upper: Double) {
        self.name = name
        self.value = value
        self.samplingError = samplingError
        self.lower = lower
        self.upper = upper
    }
}

/// Confidence-based performance estimation for a binary classifier (docs/performance.md), in the
/// manner of NannyML's CBPE: the labelled reference calibrates the scores, and a window's expected
/// confusion matrix and ROC AUC follow from its scores alone.
///
/// - **Calibration**: isotonic regression (pool adjacent violators) of the label on the score,
///   fitted on the reference's per-bin positives and negatives, each bin weighted by its rows.
///   A bin without reference rows takes the value interpolated linearly between the nearest bins
///   with rows; beyond the first and last, their values (scikit-learn's `IsotonicRegression` with
///   `out_of_bounds="clip"`, which NannyML uses, on binned scores).
/// - **Estimates**: with q_b the calibrated probability of bin b and c_b the window's rows in it,
///   expected TP = Σ q_b over predicted positives, FP = Σ (1 − q_b) over them, FN and TN likewise
///   over predicted negatives; accuracy, precision, recall and F1 from those; ROC AUC as the area
///   under the curve of expected positives and negatives taken from the highest score down.
/// - **Band**: ± 3 sampling errors, each NannyML's: the standard deviation of the metric's
///   per-row terms on the reference, over √(rows of the window × the reference's share of rows
///   the metric counts). On the reference, a row is predicted positive when its bin's middle is at
///   or above the threshold (exact when the threshold is a bin edge, as 0.5 is). For ROC AUC the
///   terms are each positive's share of negatives scored below it; within a bin the order is
///   unknown, so a positive counts half the bin's negatives, with the variance of a uniform place.
public struct PerformanceEstimator: Sendable, Hashable {
    /// Sampling errors either side of the estimate (NannyML's `SAMPLING_ERROR_RANGE`).
    public static let bandWidth = 3.0
    public let threshold: Double
    /// Calibrated P(label = 1) of each bin.
    public let calibrated: [Double]
    /// Per-metric (standard deviation, share of rows) from the reference.
    let components: [String: (std: Double, fraction: Double)]
    /// The labelled reference's own accuracy (its rows predicted positive as for the components)
    /// and ROC AUC: the baseline a drop is measured from (``RootCause``).
    public let referenceMetrics: [String: Double]

    public static func == (a: PerformanceEstimator, b: PerformanceEstimator) -> Bool {
        a.threshold == b.threshold && a.calibrated == b.calibrated
    }
    public func hash(into h: inout Hasher) {
        h.combine(threshold)
        h.combine(calibrated)
    }

    /// Fitted on `reference` (the labelled reference's score histogram); nil unless it holds both
    /// classes.
    public init?(reference: ScoreHistogram, threshold: Double) {
        let p = reference.positiveCount, n = reference.negativeCount
        guard p > 0, n > 0 else { return nil }
        self.threshold = threshold
        calibrated = Self.isotonic(reference)
        components = Self.components(reference, threshold: threshold)
        var metrics: [String: Double] = [:]
        let correct = (0..<reference.binCount).reduce(0.0) { sum, b in
            let positive = (Double(b) + 0.5) / Double(reference.binCount) >= threshold
            return sum + Double(positive ? reference.positives[b] : reference.negatives[b])
        }
        metrics["accuracy"] = correct / Double(p + n)
        metrics["roc_auc"] = reference.rocAUC
        referenceMetrics = metrics
    }

    /// The sampling error of `metric` on `rows` rows; nil for a metric the reference cannot give
    /// one for.
    public func samplingError(_ metric: String, rows: Double) -> Double? {
        guard let c = components[metric], c.std.isFinite, c.std > 0, c.fraction > 0, rows > 0 else { return nil }
        return c.std / (rows * c.fraction).squareRoot()
    }

    /// The estimated metrics of a window, by name; empty without scored rows (or with bins other
    /// than the reference's).
    public func estimate(_ scores: PredictionScores) -> [EstimatedMetric] {
        let total = scores.total
        guard total > 0, scores.binCount == calibrated.count else { return [] }
        let n = Double(total)
        var tp = 0.0, fp = 0.0, fn = 0.0, tn = 0.0
        var positives = 0.0, negatives = 0.0, area = 0.0
        for b in 0..<scores.binCount where scores.counts[b] > 0 {
            let q = calibrated[b], c = Double(scores.counts[b])
            let pp = Double(scores.predictedPositive(bin: b))
            tp += pp * q
            fp += pp * (1 - q)
            fn += (c - pp) * q
            tn += (c - pp) * (1 - q)
            // Ascending: each positive mass meets the negative mass below it and half its own bin's.
            let a = c * q, z = c * (1 - q)
            area += a * (negatives + 0.5 * z)
            positives += a
            negatives += z
        }
        func ratio(_ x: Double, _ y: Double) -> Double { y > 0 ? x / y : 0 }
        var values: [(String, Double)] = [
            ("accuracy", (tp + tn) / n), ("precision", ratio(tp, tp + fp)), ("recall", ratio(tp, tp + fn)),
            ("f1", ratio(tp, tp + 0.5 * (fp + fn))),
        ]
        if positives > 0 && negatives > 0 { values.append(("roc_auc", area / (positives * negatives))) }
        return values.compactMap { name, value in
            // A component of 0 (the reference's rows all alike for the metric, e.g. no predicted
            // positives at a threshold of 1) would claim a band of no width: no estimate then.
            samplingError(name, rows: n).map { EstimatedMetric(name: name, value: value, samplingError: $0) }
        }
        .sorted { $0.name < $1.name }
    }

    /// Isotonic (non-decreasing) regression of the label on the bin, weighted by rows, spread to
    /// every bin (see the type's notes).
    static func isotonic(_ h: ScoreHistogram) -> [Double] {
        // Blocks of consecutive bins with data: positives, rows, first and last bin.
        var blocks: [(pos: Double, rows: Double, first: Int, last: Int)] = []
        for b in 0..<h.binCount {
            let rows = Double(h.positives[b] &+ h.negatives[b])
            guard rows > 0 else { continue }
            blocks.append((Double(h.positives[b]), rows, b, b))
            while blocks.count > 1 {
                let last = blocks[blocks.count - 1], prev = blocks[blocks.count - 2]
                guard prev.pos / prev.rows > last.pos / last.rows else { break }
                blocks.removeLast()
                blocks[blocks.count - 1] = (prev.pos + last.pos, prev.rows + last.rows, prev.first, last.last)
            }
        }
        // The fitted value at each bin with data, then linear between them.
        var fitted = [Double?](repeating: nil, count: h.binCount)
        for block in blocks {
            let mean = block.pos / block.rows
            for b in block.first...block.last where h.positives[b] &+ h.negatives[b] > 0 { fitted[b] = mean }
        }
        var out = [Double](repeating: 0, count: h.binCount)
        var left: (bin: Int, value: Double)?
        var b = 0
        while b < h.binCount {
            if let v = fitted[b] {
                out[b] = v
                left = (b, v)
                b += 1
                continue
            }
            var right = b
            while right < h.binCount && fitted[right] == nil { right += 1 }
            for k in b..<right {
                switch (left, right < h.binCount ? fitted[right] : nil) {
                case let (l?, r?):
                    out[k] = l.value + (r - l.value) * Double(k - l.bin) / Double(right - l.bin)
                case let (l?, nil): out[k] = l.value
                case let (nil, r?): out[k] = r
                case (nil, nil): out[k] = 0
                }
            }
            b = right
        }
        return out
    }

    /// NannyML's sampling-error components from the labelled reference at `threshold`.
    static func components(_ h: ScoreHistogram, threshold: Double) -> [String: (std: Double, fraction: Double)] {
        var tp = 0.0, fp = 0.0, fn = 0.0, tn = 0.0
        for b in 0..<h.binCount {
            let positive = (Double(b) + 0.5) / Double(h.binCount) >= threshold
            let pos = Double(h.positives[b]), neg = Double(h.negatives[b])
            if positive {
                tp += pos
                fp += neg
            } else {
                fn += pos
                tn += neg
            }
        }
        let rows = tp + fp + fn + tn
        /// The standard deviation of a variable that is 1 with probability `p`, else 0.
        func bernoulli(_ hits: Double, _ of: Double) -> Double {
            guard of > 0 else { return .nan }
            let p = hits / of
            return (p * (1 - p)).squareRoot()
        }
        var out: [String: (std: Double, fraction: Double)] = [:]
        out["accuracy"] = (bernoulli(tp + tn, rows), 1)
        out["precision"] = (bernoulli(tp, tp + fp), (tp + fp) / rows)
        out["recall"] = (bernoulli(tp, tp + fn), (tp + fn) / rows)
        let relevant = tp + fp + fn
        if relevant > 0 {
            // F1's per-row terms: a true positive counts relevant / (TP + (FP + FN) / 2), the errors 0.
            let factor = relevant / (tp + 0.5 * (fp + fn))
            out["f1"] = (factor * bernoulli(tp, relevant), relevant / rows)
        }
        out["roc_auc"] = aucComponent(h)
        return out
    }

    /// The standard deviation over the positives of each one's share of negatives scored below it,
    /// and the positives' share of rows; the rarer class plays the positive (as NannyML does).
    static func aucComponent(_ h: ScoreHistogram) -> (std: Double, fraction: Double) {
        var pos = h.positives.map { Double($0) }, neg = h.negatives.map { Double($0) }
        let p = pos.reduce(0, +), n = neg.reduce(0, +)
        if p > n {
            (pos, neg) = (neg.reversed(), pos.reversed())
        }
        let positives = Swift.min(p, n), negatives = Swift.max(p, n)
        var below = 0.0, sum = 0.0, squares = 0.0
        for b in pos.indices {
            let pb = pos[b], nb = neg[b]
            if pb > 0 {
                // Negatives below a positive of this bin: all of the lower bins' and a uniform
                // share 0...nb of its own.
                let mean = below + 0.5 * nb
                let second = below * below + below * nb + ((nb + 1) * (nb + 1) - 1) / 12 + nb * nb / 4
                sum += pb * mean
                squares += pb * second
            }
            below += nb
        }
        let m = sum / positives, variance = Swift.max(0, squares / positives - m * m)
        return (variance.squareRoot() / negatives, positives / (positives + negatives))
    }
}

extension ScoreHistogram {
    /// The bin of `score` among `binCount` equal bins of [0, 1] (see ``bin(_:)``).
    @inline(__always)
    static func bin(_ score: Double, binCount: Int) -> Int {
        guard score > 0 else { return 0 }  // also NaN
        return Swift.min(Int(Swift.min(score, 1) * Double(binCount)), binCount - 1)
    }
}
