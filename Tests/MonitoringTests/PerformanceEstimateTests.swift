import Foundation
import Testing

@testable import Monitoring

/// Checks `PerformanceEstimator` against NannyML's CBPE (scripts/fixtures/make_cbpe_fixtures.py):
/// a labelled reference and twenty windows of 2,000 rows whose inputs drift, for a miscalibrated
/// and a calibrated model.
@Suite struct PerformanceEstimateTests {
    let cases: [[String: Any]]
    init() throws { cases = try loadJSON("cbpe_reference.json")["cases"] as! [[String: Any]] }

    static let metrics = ["roc_auc", "accuracy", "precision", "recall", "f1"]

    private func histogram(_ c: [String: Any]) -> ScoreHistogram {
        var h = ScoreHistogram()
        for pair in c["reference_positives"] as! [[Int]] { h.positives[pair[0]] = UInt64(pair[1]) }
        for pair in c["reference_negatives"] as! [[Int]] { h.negatives[pair[0]] = UInt64(pair[1]) }
        return h
    }

    private func scores(_ w: [String: Any], threshold: Double) -> PredictionScores {
        var s = PredictionScores(threshold: threshold)
        for pair in w["counts"] as! [[Int]] { s.counts[pair[0]] = UInt64(pair[1]) }
        s.thresholdBinAbove = UInt64(w["threshold_bin_above"] as! Int)
        return s
    }

    private func estimates(_ c: [String: Any]) throws -> [(window: [String: Any], got: [String: EstimatedMetric])] {
        let threshold = c["threshold"] as! Double
        let estimator = try #require(PerformanceEstimator(reference: histogram(c), threshold: threshold))
        return (c["windows"] as! [[String: Any]]).map { w in
            (
                w,
                Dictionary(
                    uniqueKeysWithValues: estimator.estimate(scores(w, threshold: threshold)).map { ($0.name, $0) })
            )
        }
    }

    /// The estimates agree with NannyML's within 0.01 (the shard calibrates binned scores, NannyML
    /// raw ones), and the sampling errors within 5% of NannyML's. Where more than a tenth of a
    /// window's scores sit in the two end bins (an overconfident model whose inputs drift outward),
    /// the shard calibrates all of them with their bin's reference rate while NannyML still tells
    /// them apart: within 0.02 there (docs/performance.md, "Estimated performance").
    @Test func estimatesAgreeWithNannyML() throws {
        for c in cases {
            let name = c["name"] as! String
            #expect(c["nannyml_calibrated"] as! Bool, "the fixture's NannyML calibrated the \(name) scores")
            for (w, got) in try estimates(c) {
                let nannyml = w["nannyml"] as! [String: [String: Double]]
                let counts = Dictionary(uniqueKeysWithValues: (w["counts"] as! [[Int]]).map { ($0[0], $0[1]) })
                let atTheEnds = Double((counts[0] ?? 0) + (counts[999] ?? 0)) / Double(counts.values.reduce(0, +))
                let tolerance = atTheEnds > 0.1 ? 0.02 : 0.01
                for metric in Self.metrics {
                    let expected = nannyml[metric]!
                    let mine = try #require(got[metric], "\(name) \(metric)")
                    #expect(
                        abs(mine.value - expected["value"]!) < tolerance,
                        "\(name) shift \(w["shift"]!) \(metric): \(mine.value) vs NannyML \(expected["value"]!)")
                    let se = expected["sampling_error"]!
                    #expect(
                        abs(mine.samplingError - se) < 0.05 * se,
                        "\(name) \(metric): sampling error \(mine.samplingError) vs NannyML \(se)")
                    #expect(mine.lower <= mine.value && mine.value <= mine.upper)
                }
            }
        }
    }

    /// The issue's target: the realized figure lies within the band in at least 90% of windows,
    /// for every metric, while the inputs drift and performance moves.
    @Test func realizedFiguresLandInTheBand() throws {
        for c in cases {
            let name = c["name"] as! String
            let results = try estimates(c)
            for metric in Self.metrics {
                var inside = 0
                for (w, got) in results {
                    let realized = (w["realized"] as! [String: Double])[metric]!
                    let e = try #require(got[metric])
                    if e.lower <= realized && realized <= e.upper { inside += 1 }
                }
                #expect(
                    Double(inside) >= 0.9 * Double(results.count),
                    "\(name) \(metric): \(inside) of \(results.count) windows in the band")
            }
            // The drift moved performance: the first and last windows' realized AUC differ by more
            // than the band is wide, so landing in it is not trivial.
            let first = (results.first!.window["realized"] as! [String: Double])["roc_auc"]!
            let last = (results.last!.window["realized"] as! [String: Double])["roc_auc"]!
            let width = results.last!.got["roc_auc"]!.upper - results.last!.got["roc_auc"]!.lower
            #expect(abs(last - first) > width / 2, "\(name): AUC \(first) → \(last), band \(width)")
        }
    }

    /// Isotonic regression on the bins: non-decreasing, equal to the bins' rates where they are
    /// already increasing, pooled where they are not, interpolated over empty bins.
    @Test func isotonicCalibrationPoolsViolators() {
        var h = ScoreHistogram(binCount: 10)
        // Rates 0.1 at bin 1, 0.5 at bin 3, 0.3 at bin 4 (pooled with bin 3: 8 of 20), 0.9 at bin 8.
        h.positives[1] = 1
        h.negatives[1] = 9
        h.positives[3] = 5
        h.negatives[3] = 5
        h.positives[4] = 3
        h.negatives[4] = 7
        h.positives[8] = 9
        h.negatives[8] = 1
        let q = PerformanceEstimator.isotonic(h)
        #expect(q[0] == 0.1 && q[1] == 0.1)
        #expect(abs(q[2] - 0.25) < 1e-12)  // halfway from 0.1 to 0.4
        #expect(q[3] == 0.4 && q[4] == 0.4)
        #expect(abs(q[6] - (0.4 + 0.5 * 2 / 4)) < 1e-12)
        #expect(q[8] == 0.9 && q[9] == 0.9)
        #expect(zip(q, q.dropFirst()).allSatisfy { $0 <= $1 })
    }

    /// With one class in the reference nothing can be calibrated: no estimator.
    @Test func oneClassReferenceGivesNoEstimate() {
        var h = ScoreHistogram()
        h.add(score: 0.7, positive: true)
        h.add(score: 0.2, positive: true)
        #expect(PerformanceEstimator(reference: h, threshold: 0.5) == nil)
    }

    /// The threshold's bin is split by the rows at or above the threshold.
    @Test func thresholdInsideABinSplitsIt() throws {
        var s = PredictionScores(threshold: 0.4005)
        s.add(score: 0.4001)
        s.add(score: 0.4009)
        s.add(score: 0.9)
        let outside = s.add(score: 1.5)
        #expect(!outside)
        #expect(s.thresholdBin == 400 && s.counts[400] == 2 && s.thresholdBinAbove == 1)
        #expect(s.predictedPositive(bin: 400) == 1 && s.predictedPositive(bin: 900) == 1)
        #expect(s.total == 3)

        // A reference positive one time in four in bins 100 and 400, three in four in bin 900: the
        // window's row above the threshold counts as predicted positive, the one below not, so
        // TP = 0.25 + 0.75, FP = 0.75 + 0.25, FN = 0.25, TN = 0.75.
        var reference = ScoreHistogram()
        for score in [0.1, 0.4002] {
            for _ in 0..<3 { reference.add(score: score, positive: false) }
            reference.add(score: score, positive: true)
        }
        for _ in 0..<3 { reference.add(score: 0.9, positive: true) }
        reference.add(score: 0.9, positive: false)
        let estimator = try #require(PerformanceEstimator(reference: reference, threshold: 0.4005))
        #expect(estimator.calibrated[400] == 0.25 && estimator.calibrated[900] == 0.75)
        let estimated = Dictionary(uniqueKeysWithValues: estimator.estimate(s).map { ($0.name, $0.value) })
        #expect(estimated["precision"].map { abs($0 - 0.5) < 1e-12 } == true)
        #expect(estimated["recall"].map { abs($0 - 1 / 1.25) < 1e-12 } == true)
        #expect(estimated["accuracy"].map { abs($0 - 1.75 / 3) < 1e-12 } == true)
    }

    /// Decoded scores and histograms must have the bins the code makes (a crafted or corrupt
    /// snapshot must not stop a replica, or allocate what its bytes ask for).
    @Test func otherBinCountsAreRefused() throws {
        var other = ScoreHistogram(binCount: 999)
        other.add(score: 0.5, positive: true)
        #expect(throws: ProfileDecodingError.self) { try ScoreHistogram(serialized: other.serialized()) }
        var fine = ScoreHistogram()
        fine.add(score: 0.5, positive: true)
        #expect(try ScoreHistogram(serialized: fine.serialized()) == fine)

        var w = ByteWriter(capacity: 64)
        PredictionScores(threshold: 0.5, binCount: 999).encode(into: &w)
        var r = ByteReader(w.bytes, what: "test")
        #expect(throws: ProfileDecodingError.self) { try PredictionScores(decoding: &r) }
        // An estimator never traps on scores of other bins: it estimates nothing.
        var scores = PredictionScores(threshold: 0.5, binCount: 999)
        scores.add(score: 0.7)
        let estimator = try #require(
            PerformanceEstimator(reference: fine.adding(score: 0.2, positive: false), threshold: 0.5))
        #expect(estimator.estimate(scores).isEmpty)
    }
}

extension ScoreHistogram {
    fileprivate func adding(score: Double, positive: Bool) -> ScoreHistogram {
        var copy = self
        copy.add(score: score, positive: positive)
        return copy
    }
}
