import Foundation
import Testing

@testable import Monitoring

/// Compares the performance metrics with scikit-learn values from
/// scripts/fixtures/make_metric_fixtures.py.
@Suite struct MetricsReferenceTests {
    let doc: [String: Any]
    init() throws { doc = try loadJSON("metrics_reference.json") }

    func expectPRF(_ m: ClassificationMetrics, _ c: [String: Any]) {
        let per = c["per_class"] as! [String: [Double]]
        for (i, v) in m.perClass.enumerated() {
            #expect(isClose(v.precision, per["precision"]![i]), "precision \(i)")
            #expect(isClose(v.recall, per["recall"]![i]), "recall \(i)")
            #expect(isClose(v.f1, per["f1"]![i]), "f1 \(i)")
        }
        for (name, avg) in [("macro", m.macro), ("weighted", m.weighted)] {
            let e = c[name] as! [String: [Double]]
            #expect(isClose(avg.precision, e["precision"]![0]), "\(name) precision")
            #expect(isClose(avg.recall, e["recall"]![0]), "\(name) recall")
            #expect(isClose(avg.f1, e["f1"]![0]), "\(name) f1")
        }
    }

    @Test func binaryClassificationEqualsSklearn() throws {
        let c = doc["binary"] as! [String: Any]
        let y = c["y_true"] as! [Int], score = c["score"] as! [Double]
        // Two shards, merged: merging must not change anything.
        var a = ClassificationState(classCount: 2), b = ClassificationState(classCount: 2)
        for i in y.indices {
            if i % 3 == 0 { a.add(actual: y[i], score: score[i]) } else { b.add(actual: y[i], score: score[i]) }
        }
        a.merge(b)
        let m = a.metrics
        let confusion = c["confusion"] as! [[Int]]
        for i in 0..<2 { for j in 0..<2 { #expect(a.count(actual: i, predicted: j) == UInt64(confusion[i][j])) } }
        #expect(isClose(m.accuracy, c["accuracy"] as! Double))
        expectPRF(m, c)
        #expect(isClose(try #require(m.logLoss), c["log_loss"] as! Double, rel: 1e-12))
        #expect(isClose(try #require(m.brier), c["brier"] as! Double, rel: 1e-12))
        // Exactly sklearn on bin-quantized scores; within the stated bound of the raw-score values.
        let auc = try #require(m.rocAUC), ap = try #require(m.averagePrecision)
        #expect(isClose(auc, c["roc_auc_binned"] as! Double, rel: 1e-12))
        #expect(isClose(ap, c["average_precision_binned"] as! Double, rel: 1e-12))
        let aucBound = try #require(m.rocAUCErrorBound), apBound = try #require(m.averagePrecisionErrorBound)
        #expect(abs(auc - (c["roc_auc"] as! Double)) <= aucBound)
        #expect(abs(ap - (c["average_precision"] as! Double)) <= apBound)
        #expect(aucBound < 0.002 && apBound < 0.01)
    }

    @Test func multiclassClassificationEqualsSklearn() throws {
        let c = doc["multiclass"] as! [String: Any]
        let y = c["y_true"] as! [Int], proba = c["proba"] as! [[Double]]
        var s = ClassificationState(classCount: 4)
        for i in y.indices { s.add(actual: y[i], probabilities: proba[i]) }
        let m = s.metrics
        let confusion = c["confusion"] as! [[Int]]
        for i in 0..<4 { for j in 0..<4 { #expect(s.count(actual: i, predicted: j) == UInt64(confusion[i][j])) } }
        #expect(isClose(m.accuracy, c["accuracy"] as! Double))
        #expect(m.support == [219, 138, 117, 26])
        expectPRF(m, c)
        #expect(isClose(try #require(m.logLoss), c["log_loss"] as! Double, rel: 1e-12))
        #expect(isClose(try #require(m.brier), c["brier_multiclass"] as! Double, rel: 1e-12))
        #expect(isClose(try #require(m.rocAUC), c["roc_auc_ovr_macro_binned"] as! Double, rel: 1e-12))
        #expect(abs(m.rocAUC! - (c["roc_auc_ovr_macro"] as! Double)) <= m.rocAUCErrorBound!)
    }

    @Test func regressionEqualsSklearn() {
        let c = doc["regression"] as! [String: Any]
        let y = c["y_true"] as! [Double], yhat = c["y_pred"] as! [Double]
        var a = RegressionState(), b = RegressionState()
        for i in y.indices {
            if i < 150 { a.add(actual: y[i], predicted: yhat[i]) } else { b.add(actual: y[i], predicted: yhat[i]) }
        }
        a.merge(b)
        let rejected = a.add(actual: .nan, predicted: 1)
        #expect(!rejected)
        let m = a.metrics
        #expect(m.count == 400)
        #expect(isClose(m.mae, c["mae"] as! Double, rel: 1e-12))
        #expect(isClose(m.rmse, c["rmse"] as! Double, rel: 1e-12))
        #expect(isClose(m.mape, c["mape"] as! Double, rel: 1e-12))
        #expect(isClose(m.r2, c["r2"] as! Double, rel: 1e-12))
        // 400 errors fit in the sketch exactly, so quantiles equal NumPy's inverted CDF.
        let q = c["error_quantiles"] as! [String: Double]
        // (Foundation's JSON parser may differ from Python's by an ulp, hence the tolerance.)
        for key in ["0.1", "0.5", "0.9"] {
            #expect(isClose(a.errors.quantile(Double(key)!), q[key]!, rel: 1e-12), "q=\(key)")
        }
        #expect(isClose(m.errorP50, q["0.5"]!, rel: 1e-12) && isClose(m.errorP90, q["0.9"]!, rel: 1e-12))
    }

    @Test func zeroDivisionAndDegenerateCases() {
        var s = ClassificationState(classCount: 3)
        s.add(actual: 0, predicted: 0)
        s.add(actual: 1, predicted: 0)
        let outOfRange = s.add(actual: 5, predicted: 0)
        #expect(!outOfRange)
        let m = s.metrics
        #expect(m.perClass[1].precision == 0 && m.perClass[2].recall == 0 && m.perClass[2].f1 == 0)
        #expect(isClose(m.perClass[0].precision, 0.5) && m.accuracy == 0.5)
        #expect(m.logLoss == nil && m.rocAUC == nil)
        var r = RegressionState()
        r.add(actual: 2, predicted: 2)
        r.add(actual: 2, predicted: 2)
        #expect(r.metrics.r2 == 1)
        r.add(actual: 2, predicted: 3)
        #expect(r.metrics.r2 == 0 && isClose(r.metrics.mae, 1.0 / 3))
    }

    @Test func latencyQuantilesWithinOnePercentRank() {
        var parts = [LatencyStats(), LatencyStats()]
        var r = TestRandom(seed: 8)
        var all: [Double] = []
        for i in 0..<100_000 {
            let v = 0.005 * r.pareto()  // heavy-tailed latencies, seconds
            all.append(v)
            parts[i % 2].add(v)
        }
        var l = parts[0]
        l.merge(parts[1])
        all.sort()
        #expect(l.count == 100_000)
        for (q, v) in [(0.5, l.p50), (0.9, l.p90), (0.99, l.p99)] {
            let rank = Double(upperBound(all, v)) / 100_000
            #expect(abs(rank - q) <= 0.01, "q=\(q)")
        }
    }
}
