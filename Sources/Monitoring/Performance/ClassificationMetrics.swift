/// Mergeable state of a classifier's performance over `classCount` classes (labels 0..<K):
/// the confusion matrix, log-loss and Brier sums when probabilities are given, and one
/// ``ScoreHistogram`` per class for ROC/PR AUC (one for binary).
public struct ClassificationState: Sendable, Hashable {
    public let classCount: Int
    /// Row-major K×K counts: `confusion[actual * K + predicted]`.
    public internal(set) var confusion: [UInt64]
    public internal(set) var logLossSum = 0.0
    public internal(set) var brierSum = 0.0
    /// Examples added with probabilities.
    public internal(set) var scoredCount: UInt64 = 0
    /// Binary: one histogram of P(class 1). Multiclass: one per class (one-vs-rest).
    public internal(set) var histograms: [ScoreHistogram]
    /// Binary: the sum of the scores in each of ``calibrationBins`` equal bins of [0, 1] (each the
    /// union of consecutive histogram bins), for the expected calibration error. Empty otherwise.
    public internal(set) var calibrationScoreSums: [Double]

    /// Bins of the expected calibration error.
    public static let calibrationBins = 10

    /// Probabilities are clipped to [ε, 1 − ε] with ε = 2.22e-16 for the log loss (scikit-learn).
    public static let probabilityEpsilon = Double.ulpOfOne

    public init(classCount: Int, binCount: Int = ScoreHistogram.defaultBinCount) {
        precondition(classCount >= 2, "a classifier has at least two classes")
        self.classCount = classCount
        confusion = [UInt64](repeating: 0, count: classCount * classCount)
        histograms = Array(repeating: ScoreHistogram(binCount: binCount), count: classCount == 2 ? 1 : classCount)
        calibrationScoreSums =
            classCount == 2 && binCount % Self.calibrationBins == 0
            ? [Double](repeating: 0, count: Self.calibrationBins) : []
    }

    /// Adds one labelled prediction; labels outside 0..<K are ignored (return `false`).
    @discardableResult
    public mutating func add(actual: Int, predicted: Int) -> Bool {
        guard (0..<classCount).contains(actual), (0..<classCount).contains(predicted) else { return false }
        confusion[actual * classCount + predicted] &+= 1
        return true
    }

    /// Adds a prediction with class probabilities (the predicted class is the argmax, first on
    /// ties); updates log loss, Brier score and the AUC histograms.
    @discardableResult
    public mutating func add(actual: Int, probabilities: [Double]) -> Bool {
        guard probabilities.count == classCount, (0..<classCount).contains(actual) else { return false }
        var best = 0
        for k in 1..<classCount where probabilities[k] > probabilities[best] { best = k }
        confusion[actual * classCount + best] &+= 1
        let eps = Self.probabilityEpsilon
        let p = Swift.min(Swift.max(probabilities[actual], eps), 1 - eps)
        logLossSum -= Math.log(p)
        if classCount == 2 {
            let d = probabilities[1] - Double(actual)
            brierSum += d * d
            histograms[0].add(score: probabilities[1], positive: actual == 1)
            if !calibrationScoreSums.isEmpty {
                let bin = histograms[0].bin(probabilities[1]) / (histograms[0].binCount / Self.calibrationBins)
                calibrationScoreSums[bin] += Swift.min(Swift.max(probabilities[1], 0), 1)
            }
        } else {
            for k in 0..<classCount {
                let d = probabilities[k] - (k == actual ? 1 : 0)
                brierSum += d * d
                histograms[k].add(score: probabilities[k], positive: k == actual)
            }
        }
        scoredCount &+= 1
        return true
    }

    /// Binary, at a decision threshold: predicted 1 when `score ≥ threshold`; the score is P(class
    /// 1) and must lie in [0, 1] (else nothing is added and the answer is `false`).
    @discardableResult
    public mutating func add(actual: Int, score: Double, threshold: Double) -> Bool {
        guard classCount == 2, actual == 0 || actual == 1, score >= 0, score <= 1 else { return false }
        confusion[actual * 2 + (score >= threshold ? 1 : 0)] &+= 1
        let eps = Self.probabilityEpsilon
        let p = Swift.min(Swift.max(actual == 1 ? score : 1 - score, eps), 1 - eps)
        logLossSum -= Math.log(p)
        let d = score - Double(actual)
        brierSum += d * d
        histograms[0].add(score: score, positive: actual == 1)
        if !calibrationScoreSums.isEmpty {
            calibrationScoreSums[histograms[0].bin(score) / (histograms[0].binCount / Self.calibrationBins)] += score
        }
        scoredCount &+= 1
        return true
    }

    /// Binary: Σ over ``calibrationBins`` equal score bins of |positives − Σ scores|, over the
    /// scored examples (the expected calibration error); nil without scores.
    public var expectedCalibrationError: Double? {
        guard classCount == 2, scoredCount > 0, !calibrationScoreSums.isEmpty else { return nil }
        let h = histograms[0]
        let width = h.binCount / Self.calibrationBins
        var total = 0.0
        for b in 0..<Self.calibrationBins {
            let positives = h.positives[(b * width)..<((b + 1) * width)].reduce(0, &+)
            total += abs(Double(positives) - calibrationScoreSums[b])
        }
        return total / Double(scoredCount)
    }

    /// Binary convenience: score = P(class 1).
    @discardableResult
    public mutating func add(actual: Int, score: Double) -> Bool {
        add(actual: actual, probabilities: [1 - score, score])
    }

    public mutating func merge(_ other: ClassificationState) {
        precondition(other.classCount == classCount, "cannot merge states with different class counts")
        for i in confusion.indices { confusion[i] &+= other.confusion[i] }
        logLossSum += other.logLossSum
        brierSum += other.brierSum
        scoredCount &+= other.scoredCount
        for i in histograms.indices { histograms[i].merge(other.histograms[i]) }
        for i in calibrationScoreSums.indices where i < other.calibrationScoreSums.count {
            calibrationScoreSums[i] += other.calibrationScoreSums[i]
        }
    }

    public func count(actual: Int, predicted: Int) -> UInt64 { confusion[actual * classCount + predicted] }

    /// The metrics computed from this state.
    public var metrics: ClassificationMetrics { ClassificationMetrics(self) }
}

/// Precision, recall and F1 for one class or one average.
public struct PrecisionRecallF1: Sendable, Hashable {
    public var precision: Double
    public var recall: Double
    public var f1: Double
}

/// Classification metrics with scikit-learn's definitions (`zero_division = 0`).
public struct ClassificationMetrics: Sendable, Hashable {
    public var count: UInt64
    public var accuracy: Double
    /// Per class, with its support (number of actual examples).
    public var perClass: [PrecisionRecallF1]
    public var support: [UInt64]
    /// Unweighted mean over classes.
    public var macro: PrecisionRecallF1
    /// Mean over classes weighted by support.
    public var weighted: PrecisionRecallF1
    /// Mean −ln p(actual) (probabilities clipped to [ε, 1−ε]); `nil` without probabilities.
    public var logLoss: Double?
    /// Binary: mean (p₁ − y)². Multiclass: mean Σ_k (p_k − 1[y = k])².
    public var brier: Double?
    /// Binary ROC AUC, or the one-vs-rest macro average for multiclass; see ``ScoreHistogram``.
    public var rocAUC: Double?
    /// Bound on the histogram error of ``rocAUC`` (largest over classes for multiclass).
    public var rocAUCErrorBound: Double?
    /// Binary average precision (PR AUC), or the one-vs-rest macro average.
    public var averagePrecision: Double?
    public var averagePrecisionErrorBound: Double?

    init(_ s: ClassificationState) {
        let k = s.classCount
        var total: UInt64 = 0, correct: UInt64 = 0
        var predictedTotals = [UInt64](repeating: 0, count: k)
        var support = [UInt64](repeating: 0, count: k)
        for a in 0..<k {
            for p in 0..<k {
                let c = s.confusion[a * k + p]
                total &+= c
                support[a] &+= c
                predictedTotals[p] &+= c
                if a == p { correct &+= c }
            }
        }
        count = total
        self.support = support
        accuracy = total > 0 ? Double(correct) / Double(total) : 0
        let perClass = (0..<k).map { c in
            let tp = Double(s.confusion[c * k + c])
            let precision = predictedTotals[c] > 0 ? tp / Double(predictedTotals[c]) : 0
            let recall = support[c] > 0 ? tp / Double(support[c]) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            return PrecisionRecallF1(precision: precision, recall: recall, f1: f1)
        }
        self.perClass = perClass
        let n = Double(k)
        macro = PrecisionRecallF1(
            precision: perClass.reduce(0) { $0 + $1.precision } / n,
            recall: perClass.reduce(0) { $0 + $1.recall } / n,
            f1: perClass.reduce(0) { $0 + $1.f1 } / n)
        let w = total > 0 ? support.map { Double($0) / Double(total) } : [Double](repeating: 0, count: k)
        weighted = PrecisionRecallF1(
            precision: zip(perClass, w).reduce(0) { $0 + $1.0.precision * $1.1 },
            recall: zip(perClass, w).reduce(0) { $0 + $1.0.recall * $1.1 },
            f1: zip(perClass, w).reduce(0) { $0 + $1.0.f1 * $1.1 })
        if s.scoredCount > 0 {
            logLoss = s.logLossSum / Double(s.scoredCount)
            brier = s.brierSum / Double(s.scoredCount)
            let aucs = s.histograms.compactMap(\.rocAUC)
            if aucs.count == s.histograms.count {
                rocAUC = aucs.reduce(0, +) / Double(aucs.count)
                rocAUCErrorBound = s.histograms.map(\.rocAUCErrorBound).max()
            }
            let aps = s.histograms.compactMap(\.averagePrecision)
            if aps.count == s.histograms.count {
                averagePrecision = aps.reduce(0, +) / Double(aps.count)
                averagePrecisionErrorBound = s.histograms.map(\.averagePrecisionErrorBound).max()
            }
        }
    }
}
