import Testing

@testable import Monitoring

/// `RootCause.explain` on hand-made results: which features and segments come first, and when a
/// drop counts as one.
@Suite struct RootCauseTests {
    func feature(_ name: String, drift: Bool, method: DriftMethod, score: Double, threshold: Double) -> FeatureResult {
        var f = FeatureResult(name: name, type: .numeric)
        f.method = method
        f.score = score
        f.threshold = threshold
        f.drift = drift
        return f
    }

    func result(segment: Segment?, rows: UInt64, labelled: UInt64, accuracy: Double) -> WindowResult {
        var r = WindowResult(
            window: WindowSnapshot(
                key: WindowKey(startMs: 0, series: SeriesKey(version: "", segment: segment)), endMs: 1_000,
                isOpen: false, rows: rows, columns: []))
        r.performance = WindowPerformance(metrics: [("accuracy", accuracy)], labelledRows: labelled)
        return r
    }

    @Test func featuresRankByDriftThenImpactAndAttributionShift() {
        var window = result(segment: nil, rows: 1_000, labelled: 1_000, accuracy: 0.7)
        window.features = [
            feature("calm", drift: false, method: .wasserstein, score: 0.05, threshold: 0.1),
            feature("mild", drift: true, method: .wasserstein, score: 0.12, threshold: 0.1),
            feature("strong", drift: true, method: .ks, score: 1e-12, threshold: 0.05),
            feature("quiet", drift: false, method: .wasserstein, score: 0.02, threshold: 0.1),
        ]
        // "quiet" does not drift, but its share of the attributions doubled: flagged.
        window.attributions = [
            AttributionResult(feature: "quiet", meanAbsolute: 0.4, referenceMeanAbsolute: 0.2),
            AttributionResult(feature: "calm", meanAbsolute: 0.1, referenceMeanAbsolute: 0.1),
        ]
        let hints = RootCause.explain(window: window, segments: [], reference: nil, threshold: nil)
        #expect(hints.features.map(\.name) == ["strong", "quiet", "mild", "calm"])
        // log(1e-12) / log(0.05) ≈ 9.2; 0.12 / 0.1 = 1.2.
        #expect(abs(hints.features[0].severity - 27.631 / 2.9957) < 0.01)
        #expect(hints.features[1].attributionShifted && abs(hints.features[1].attributionChange! - 1) < 1e-12)
        #expect(abs(hints.features[1].importance! - 0.8) < 1e-12)
        #expect(!hints.features[3].attributionShifted && hints.features[3].attributionChange == 0)
    }

    @Test func segmentsRankByTheirExcessShareOfErrors() {
        let window = result(segment: nil, rows: 1_000, labelled: 1_000, accuracy: 0.8)  // 200 errors
        let a = result(segment: Segment(column: "region", value: .value("a")), rows: 750, labelled: 750, accuracy: 0.9)
        let b = result(segment: Segment(column: "region", value: .value("b")), rows: 250, labelled: 250, accuracy: 0.5)
        let hints = RootCause.explain(window: window, segments: [a, b], reference: nil, threshold: nil)
        #expect(hints.segmentBasis == "realized accuracy")
        #expect(hints.segments.map(\.segment.value) == [.value("b"), .value("a")])
        let first = hints.segments[0]
        // b: 125 of the 200 errors on a quarter of the rows.
        #expect(abs(first.errorShare - 0.625) < 1e-12 && abs(first.rowShare - 0.25) < 1e-12)
        #expect(abs(first.lift - 2.5) < 1e-12)
        #expect(hints.performance?.metric == "accuracy" && hints.performance?.dropped == false)
    }

    /// A drop is a figure below the labelled reference's by more than 3 sampling errors.
    @Test func aDropIsMeasuredAgainstTheLabelledReference() throws {
        var reference = ScoreHistogram()
        for i in 0..<1_000 {
            let s = (Double(i) + 0.5) / 1_000
            reference.add(score: s, positive: i % 10 < 9 ? s >= 0.5 : s < 0.5)  // 90% right
        }
        let good = result(segment: nil, rows: 2_000, labelled: 2_000, accuracy: 0.89)
        let bad = result(segment: nil, rows: 2_000, labelled: 2_000, accuracy: 0.80)
        let kept = RootCause.explain(window: good, segments: [], reference: reference, threshold: 0.5)
        let dropped = RootCause.explain(window: bad, segments: [], reference: reference, threshold: 0.5)
        let p = try #require(kept.performance)
        #expect(abs(p.reference! - 0.9) < 1e-12 && !p.dropped && !p.estimated)
        // 3 · √(0.9 · 0.1 / 2,000) ≈ 0.020.
        #expect(abs(p.margin! - 3 * (0.09 / 2_000).squareRoot()) < 1e-9)
        #expect(dropped.performance?.dropped == true)
    }
}
