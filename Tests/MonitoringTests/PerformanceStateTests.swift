import Foundation
import Testing

@testable import Monitoring

/// A window's performance from prediction and label columns, against scikit-learn's figures on
/// the same rows (Fixtures/metrics_reference.json, scripts/fixtures/make_metric_fixtures.py).
@Suite struct PerformanceStateTests {
    let doc: [String: Any]
    init() throws { doc = try loadJSON("metrics_reference.json") }

    private func prepared(_ column: WindowColumn, rows: Int) -> PreparedColumn {
        PreparedColumn(column, rowCount: rows)
    }

    private func state(
        _ task: PerformanceTask, prediction: WindowColumn?, label: WindowColumn, rows: Int, split: Int? = nil
    ) -> PerformanceState {
        let p = prediction.map { prepared($0, rows: rows) }, l = prepared(label, rows: rows)
        guard let split else {
            var s = PerformanceState(task: task)
            s.add(prediction: p, label: l, rows: Array(0..<rows))
            return s
        }
        var a = PerformanceState(task: task), b = PerformanceState(task: task)
        a.add(prediction: p, label: l, rows: Array(0..<split))
        b.add(prediction: p, label: l, rows: Array(split..<rows))
        a.merge(b)
        return a
    }

    private func metric(_ s: PerformanceState, _ name: String) -> Double? { s.metrics.first { $0.name == name }?.value }

    @Test("binary: every metric equals scikit-learn's, at 0.5 and at another threshold, merged or not")
    func binaryEqualsSklearn() throws {
        let c = doc["binary"] as! [String: Any]
        let y = c["y_true"] as! [Int], score = c["score"] as! [Double]
        let labels = WindowColumn.numbers("is_fraud", y.map(Double.init))
        let scores = WindowColumn.numbers("score", score)
        let whole = state(.binary(threshold: 0.5), prediction: scores, label: labels, rows: y.count)
        let merged = state(.binary(threshold: 0.5), prediction: scores, label: labels, rows: y.count, split: 211)
        // Merging two parts gives the same counts, and the same sums up to their order of addition.
        #expect(whole.classification?.confusion == merged.classification?.confusion)
        #expect(whole.classification?.histograms == merged.classification?.histograms)
        #expect(zip(whole.metrics, merged.metrics).allSatisfy { $0.name == $1.name && isClose($0.value, $1.value) })
        #expect(whole.labelledRows == UInt64(y.count) && whole.unusableRows == 0)
        let confusion = c["confusion"] as! [[Int]]
        #expect(metric(whole, "tn") == Double(confusion[0][0]) && metric(whole, "fp") == Double(confusion[0][1]))
        #expect(metric(whole, "fn") == Double(confusion[1][0]) && metric(whole, "tp") == Double(confusion[1][1]))
        let per = c["per_class"] as! [String: [Double]]
        #expect(isClose(try #require(metric(whole, "accuracy")), c["accuracy"] as! Double))
        #expect(isClose(try #require(metric(whole, "precision")), per["precision"]![1]))
        #expect(isClose(try #require(metric(whole, "recall")), per["recall"]![1]))
        #expect(isClose(try #require(metric(whole, "f1")), per["f1"]![1]))
        #expect(isClose(try #require(metric(whole, "log_loss")), c["log_loss"] as! Double, rel: 1e-12))
        #expect(isClose(try #require(metric(whole, "brier")), c["brier"] as! Double, rel: 1e-12))
        // Histogram AUCs equal scikit-learn on the binned scores, within 0.002 of the raw ones.
        let auc = try #require(metric(whole, "roc_auc"))
        #expect(isClose(auc, c["roc_auc_binned"] as! Double, rel: 1e-12))
        #expect(abs(auc - (c["roc_auc"] as! Double)) < 0.002)
        #expect(isClose(try #require(metric(whole, "pr_auc")), c["average_precision_binned"] as! Double, rel: 1e-12))
        // scikit-learn has no ECE: the fixture computes it with NumPy from its definition (10
        // equal score bins, each the union of 100 histogram bins; Σ |positives − Σ scores| / n).
        #expect(isClose(try #require(metric(whole, "ece")), c["ece"] as! Double, rel: 1e-12))

        let at03 = state(.binary(threshold: 0.3), prediction: scores, label: labels, rows: y.count)
        let t = c["threshold_0_3"] as! [String: Any]
        let confusion03 = t["confusion"] as! [[Int]]
        #expect(metric(at03, "tn") == Double(confusion03[0][0]) && metric(at03, "tp") == Double(confusion03[1][1]))
        let per03 = t["per_class"] as! [String: [Double]]
        #expect(isClose(try #require(metric(at03, "precision")), per03["precision"]![1]))
        #expect(isClose(try #require(metric(at03, "recall")), per03["recall"]![1]))
        // The threshold moves the decisions only; the scores' figures stay.
        #expect(metric(at03, "roc_auc") == auc && metric(at03, "log_loss") == metric(whole, "log_loss"))

        // The same labels as booleans or as text make the same state.
        let bools = WindowColumn(name: "is_fraud", values: .bools(y.map { $0 == 1 }))
        let texts = WindowColumn.strings("is_fraud", y.map { $0 == 1 ? "True" : "0" })
        #expect(state(.binary(threshold: 0.5), prediction: scores, label: bools, rows: y.count) == whole)
        #expect(state(.binary(threshold: 0.5), prediction: scores, label: texts, rows: y.count) == whole)
    }

    @Test("rows without a label are skipped; a label or prediction the task cannot read is counted, not used")
    func unusableRows() {
        let labels = WindowColumn.numbers("y", [1, 0, .nan, 2, 1, 0])
        let scores = WindowColumn(
            name: "p", values: .numbers([0.9, 0.2, 0.5, 0.4, 1.5, 0.3]), missingRows: [], mismatchRows: [5])
        let s = state(.binary(threshold: 0.5), prediction: scores, label: labels, rows: 6)
        // Row 2 is unlabelled; rows 3 (label 2), 4 (score 1.5) and 5 (mismatched score) are unusable.
        #expect(s.labelledRows == 2 && s.unusableRows == 3)
        #expect(metric(s, "accuracy") == 1)
        let noPrediction = state(.binary(threshold: 0.5), prediction: nil, label: labels, rows: 6)
        #expect(noPrediction.labelledRows == 0 && noPrediction.unusableRows == 5 && noPrediction.metrics.isEmpty)
        // A label whose value did not fit the column's type was sent: unusable, not unlabelled.
        let mismatched = WindowColumn(name: "y", values: .numbers([1, .nan, .nan]), mismatchRows: [1, 2])
        let m = state(
            .binary(threshold: 0.5), prediction: .numbers("p", [0.9, 0.9, 0.9]), label: mismatched, rows: 3)
        #expect(m.labelledRows == 1 && m.unusableRows == 2)
    }

    @Test("multiclass: accuracy, macro and weighted F1, per-class precision and recall equal scikit-learn's")
    func multiclassEqualsSklearn() throws {
        let c = doc["multiclass"] as! [String: Any]
        let y = c["y_true"] as! [Int], predicted = c["y_pred"] as! [Int]
        let names = ["0", "1", "2", "3"]
        let s = state(
            .multiclass(classes: names), prediction: .numbers("class", predicted.map(Double.init)),
            label: .strings("actual", y.map(String.init)), rows: y.count, split: 123)
        #expect(s.labelledRows == UInt64(y.count))
        #expect(isClose(try #require(metric(s, "accuracy")), c["accuracy"] as! Double))
        #expect(isClose(try #require(metric(s, "macro_f1")), (c["macro"] as! [String: [Double]])["f1"]![0]))
        #expect(isClose(try #require(metric(s, "weighted_f1")), (c["weighted"] as! [String: [Double]])["f1"]![0]))
        let per = c["per_class"] as! [String: [Double]]
        for (k, name) in names.enumerated() {
            #expect(isClose(try #require(metric(s, "precision.\(name)")), per["precision"]![k]), "class \(name)")
            #expect(isClose(try #require(metric(s, "recall.\(name)")), per["recall"]![k]), "class \(name)")
        }
        let unknown = state(
            .multiclass(classes: names), prediction: .strings("class", ["0", "7"]),
            label: .strings("actual", ["9", "1"]), rows: 2)
        #expect(unknown.labelledRows == 0 && unknown.unusableRows == 2)
    }

    @Test("regression: MAE, RMSE, MAPE and R² equal scikit-learn's")
    func regressionEqualsSklearn() throws {
        let c = doc["regression"] as! [String: Any]
        let y = c["y_true"] as! [Double], yhat = c["y_pred"] as! [Double]
        let s = state(
            .regression, prediction: .numbers("yhat", yhat), label: .numbers("y", y), rows: y.count, split: 150)
        #expect(s.labelledRows == 400)
        for name in ["mae", "rmse", "mape", "r2"] {
            #expect(isClose(try #require(metric(s, name)), c[name] as! Double, rel: 1e-12), "\(name)")
        }
        let q = c["error_quantiles"] as! [String: Double]
        #expect(isClose(try #require(metric(s, "error_p50")), q["0.5"]!, rel: 1e-12))
    }

    @Test("the binary form decodes to the same state, for every task")
    func codingRoundTrips() throws {
        let b = doc["binary"] as! [String: Any], r = doc["regression"] as! [String: Any]
        let y = b["y_true"] as! [Int]
        let states = [
            state(
                .binary(threshold: 0.4), prediction: .numbers("p", b["score"] as! [Double]),
                label: .numbers("y", y.map(Double.init)), rows: y.count),
            state(
                .multiclass(classes: ["a", "b", "c"]), prediction: .strings("p", ["a", "c", "x"]),
                label: .strings("y", ["a", "b", "c"]), rows: 3),
            state(
                .regression, prediction: .numbers("p", r["y_pred"] as! [Double]),
                label: .numbers("y", r["y_true"] as! [Double]), rows: 400),
            PerformanceState(task: .binary(threshold: 0.5)),
        ]
        for s in states {
            var w = ByteWriter(capacity: 64)
            s.encode(into: &w)
            var reader = ByteReader(w.bytes, what: "test")
            let decoded = try PerformanceState(decoding: &reader)
            try reader.finish()
            #expect(decoded == s, "\(s.task)")
            var again = ByteWriter(capacity: 64)
            decoded.encode(into: &again)
            #expect(again.bytes == w.bytes)
        }
    }
}
