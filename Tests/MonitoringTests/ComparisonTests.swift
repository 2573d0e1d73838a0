import Foundation
import Testing

@testable import Monitoring

/// Checks `VersionComparison` against scripts/fixtures/make_compare_fixtures.py (SciPy's Welch
/// test and normal distribution, scikit-learn's AUC and F1, DeLong's variance by all pairs).
@Suite struct ComparisonTests {
    let cases: [[String: Any]]
    init() throws { cases = try loadJSON("compare_reference.json")["cases"] as! [[String: Any]] }

    private func state(_ side: [String: Any], task: PerformanceTask) -> PerformanceState {
        var s = PerformanceState(task: task)
        let labels = side["labels"] as! [Double]
        let predicted = (side["scores"] ?? side["predictions"]) as! [Double]
        for (y, p) in zip(labels, predicted) { s.add(actual: .number(y), predicted: .number(p)) }
        return s
    }

    private func states(_ c: [String: Any]) -> (PerformanceState, PerformanceState) {
        let task: PerformanceTask = c["task"] as! String == "binary" ? .binary(threshold: 0.5) : .regression
        return (state(c["a"] as! [String: Any], task: task), state(c["b"] as! [String: Any], task: task))
    }

    @Test func accuracyAndAUCAgreeWithTheReference() throws {
        for c in cases where c["task"] as! String == "binary" {
            let (a, b) = states(c)
            let name = c["name"] as! String
            for metric in [ComparedMetric.accuracy, .rocAUC] {
                let expected = c[metric.rawValue] as! [String: Double]
                let got = try VersionComparison.compare(a, b, on: metric)
                #expect(
                    abs(got.a.value - expected["a"]!) < 1e-12 && abs(got.b.value - expected["b"]!) < 1e-12,
                    "\(name) \(metric)")
                #expect(
                    isCloseP(got.pValue, expected["p_value"]!),
                    "\(name) \(metric): p \(got.pValue) vs \(expected["p_value"]!)")
                #expect(
                    abs(got.lower - expected["lower"]!) < 1e-9 && abs(got.upper - expected["upper"]!) < 1e-9,
                    "\(name) \(metric)")
                let significant = expected["p_value"]! < 0.05
                #expect(
                    got.better == (significant ? (expected["a"]! > expected["b"]! ? "a" : "b") : nil),
                    "\(name) \(metric)")
            }
        }
    }

    @Test func maeIsWelchOnAbsoluteErrors() throws {
        for c in cases where c["task"] as! String == "regression" {
            let (a, b) = states(c)
            let expected = c["mae"] as! [String: Double]
            let got = try VersionComparison.compare(a, b, on: .mae)
            #expect(abs(got.a.value - expected["a"]!) < 1e-9 && abs(got.b.value - expected["b"]!) < 1e-9)
            #expect(isCloseP(got.pValue, expected["p_value"]!), "p \(got.pValue) vs \(expected["p_value"]!)")
            #expect(abs(got.lower - expected["lower"]!) < 1e-6 && abs(got.upper - expected["upper"]!) < 1e-6)
            // A smaller error is better.
            #expect(got.better == (expected["p_value"]! < 0.05 ? "a" : nil))
        }
    }

    @Test func rmseAndF1AreNearTheReference() throws {
        for c in cases {
            let (a, b) = states(c)
            let name = c["name"] as! String
            if c["task"] as! String == "regression" {
                let expected = c["rmse"] as! [String: Double]
                let got = try VersionComparison.compare(a, b, on: .rmse)
                #expect(abs(got.a.value - expected["a"]!) < 1e-9 && abs(got.b.value - expected["b"]!) < 1e-9)
                // The fourth moment comes from a quantile sketch here, exact in the reference.
                let (p, q) = (got.pValue, expected["p_value"]!)
                #expect(q < 1e-6 ? p < 1e-5 : abs(p - q) < 0.02, "\(name) rmse p \(p) vs \(q)")
            } else {
                let expected = c["f1"] as! [String: Double]
                let got = try VersionComparison.compare(a, b, on: .f1)
                #expect(abs(got.a.value - expected["a"]!) < 1e-12 && abs(got.b.value - expected["b"]!) < 1e-12)
                #expect(got.lower < got.difference && got.difference < got.upper, "\(got)")
                // The same comparison answers the same (fixed seeds), either way round.
                #expect(try VersionComparison.compare(a, b, on: .f1) == got)
                let swapped = try VersionComparison.compare(b, a, on: .f1)
                #expect(swapped.pValue == got.pValue && swapped.difference == -got.difference)
                #expect((got.pValue < 0.05) == (name == "binary_apart"), "\(name) f1 p \(got.pValue)")
            }
        }
    }

    @Test func incomparableStatesSayWhy() throws {
        let (binary, _) = states(cases[0])
        let (regression, _) = states(cases[2])
        #expect(throws: ComparisonError("rmse does not apply to version a's task (binary-classification)")) {
            try VersionComparison.compare(binary, regression, on: .rmse)
        }
        #expect(throws: ComparisonError("version b has 0 labelled rows in the range; a comparison needs at least 30")) {
            try VersionComparison.compare(binary, PerformanceState(task: .binary(threshold: 0.5)), on: .accuracy)
        }
        var onlyPositives = PerformanceState(task: .binary(threshold: 0.5))
        for _ in 0..<40 { onlyPositives.add(actual: .number(1), predicted: .number(0.7)) }
        #expect(throws: ComparisonError("version b needs at least 2 positive and 2 negative labels for roc_auc")) {
            try VersionComparison.compare(binary, onlyPositives, on: .rocAUC)
        }
    }

    @Test func rmseSeesRareLargeErrors() throws {
        // 0.04% of errors are 100, the rest 1: the mean fourth power is ~41 (MSE² ~25); from
        // quantiles alone it would look like 1, and the standard error would vanish.
        func state(outliers: Int, rows: Int) -> PerformanceState {
            var s = PerformanceState(task: .regression)
            for i in 0..<rows {
                s.add(actual: .number(0), predicted: .number(i < outliers ? 100 : (i % 2 == 0 ? 1 : -1)))
            }
            return s
        }
        let a = state(outliers: 20, rows: 50_000), b = state(outliers: 0, rows: 50_000)
        let got = try VersionComparison.compare(a, b, on: .rmse)
        #expect(got.upper - got.lower > 0.1, "\(got)")
        // The exact delta-method p for these errors: se² = Σ (E[e⁴] − MSE²)/(4·n·MSE) over both.
        func exact(_ outliers: Double, _ n: Double) -> (rmse: Double, variance: Double) {
            let mse = (outliers * 10_000 + (n - outliers)) / n
            let fourth = (outliers * 100_000_000 + (n - outliers)) / n
            return (mse.squareRoot(), (fourth - mse * mse) / n / (4 * mse))
        }
        let (ea, va) = exact(20, 50_000), (eb, vb) = exact(0, 50_000)
        let z = (ea - eb) / (va + vb).squareRoot()
        let p = VersionComparison.normalSurvival(abs(z)) * 2
        // Never narrower than the truth: the interval is at least as wide, p at least as large.
        #expect(got.upper - got.lower >= 2 * 1.959963984540054 * (va + vb).squareRoot() * 0.99, "\(got)")
        #expect(got.pValue >= p * 0.5 && got.pValue < 1e-4, "p \(got.pValue) vs \(p)")
    }

    @Test func studentTailsMatchSciPy() {
        // scipy.stats.t.sf(t, df) for a few pairs.
        let reference: [(t: Double, df: Double, sf: Double)] = [
            (2.0, 5, 0.050969739414929174), (1.0, 30, 0.1626543077130151), (3.5, 12.5, 0.00206757052288064),
            (0.3, 1, 0.4072264209222577),
        ]
        for r in reference {
            let got = VersionComparison.studentSurvival(r.t, degreesOfFreedom: r.df)
            #expect(abs(got - r.sf) < 1e-10, "t \(r.t) df \(r.df): \(got) vs \(r.sf)")
        }
        #expect(abs(VersionComparison.studentQuantile975(10) - 2.228138851986274) < 1e-9)
    }
}

/// p-values compared relatively when tiny, absolutely otherwise.
private func isCloseP(_ a: Double, _ b: Double) -> Bool {
    b < 1e-6 ? abs(a - b) <= 1e-6 * b + 1e-300 || abs(log(a) - log(b)) < 1e-6 : abs(a - b) < 1e-9
}
