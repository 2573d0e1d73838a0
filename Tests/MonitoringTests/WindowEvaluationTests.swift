import Testing

@testable import Monitoring

/// Rows of a model with numeric features `x` and `y` and a categorical `kind`; `y` is shifted
/// by `shift` standard deviations.
func modelBatch(_ n: Int, from: Int64, span: Int64, shift: Double = 0, seed: UInt64) -> WindowBatch {
    var r = TestRandom(seed: seed)
    let xs = (0..<n).map { _ in r.normal() * 2 + 10 }
    let ys = (0..<n).map { _ in r.normal() + shift }
    let kinds = (0..<n).map { _ in ["a", "b", "c"][Int(r.next() % 3)] }
    let scores = (0..<n).map { _ in r.uniform() }
    return WindowBatch(
        rowCount: n, eventTimesMs: spread(n, from: from, span: span), versions: .batch("v1"),
        columns: [.numbers("x", xs), .numbers("y", ys), .strings("kind", kinds)],
        prediction: .numbers("score", scores))
}

/// Profiles of a batch as an uploaded reference, built with the window logic itself.
func referenceProfile(_ batch: WindowBatch, spanMs: Int64) throws -> ReferenceProfile {
    var m = ModelWindows(settings: WindowSettings(sizeMs: Int64.max / 4, latenessMs: 0, maxEventAheadMs: Int64.max / 4))
    _ = try m.add(batch, processingTimeMs: 0)
    let w = try #require(m.openWindows().first?.window)
    return ReferenceProfile(columns: w.columns, prediction: w.prediction, rows: w.rows, spanMs: spanMs)
}

let hour: Int64 = 3_600_000

@Suite struct WindowDriftTests {
    /// Three hourly windows against an uploaded reference, `y` shifted in the second hour only;
    /// returns (window index, feature) of every drift verdict, oldest window first.
    func driftVerdicts(_ config: MonitorConfig) throws -> [(Int, String)] {
        try driftResults(config).enumerated().flatMap { i, r in r.driftingFeatures.map { (i, $0) } }
    }

    func driftResults(_ config: MonitorConfig) throws -> [WindowResult] {
        var m = ModelWindows(settings: WindowSettings(sizeMs: hour, latenessMs: 0))
        m.setUploadedReference(
            try referenceProfile(modelBatch(5_000, from: 0, span: hour, seed: 1), spanMs: hour), version: "v1")
        var closed: [EvaluableWindow] = []
        let t0 = 100 * hour
        for h in 0..<3 {
            let start = t0 + Int64(h) * hour
            let batch = modelBatch(4_000, from: start, span: hour, shift: h == 1 ? 1 : 0, seed: 10 + UInt64(h))
            closed += try m.add(batch, processingTimeMs: start + hour).closed
        }
        closed += m.tick(processingTimeMs: t0 + 5 * hour).closed
        #expect(closed.map(\.window.startMs) == [t0, t0 + hour, t0 + 2 * hour])
        return closed.map { w in
            let result = WindowResult.evaluate(w.window, reference: w.reference, config: config)
            #expect(result.features.map(\.name) == ["x", "y", "kind"])
            #expect(result.volumeRatio.map { abs($0 - 0.8) < 1e-9 } == true)  // 4,000 rows against 5,000 an hour
            return result
        }
    }

    @Test func aShiftedFeatureDriftsInExactlyTheShiftedWindow() throws {
        let results = try driftResults(MonitorConfig())
        let verdicts = results.enumerated().flatMap { i, r in r.driftingFeatures.map { (i, $0) } }
        #expect(verdicts.map(\.0) == [1] && verdicts.map(\.1) == ["y"])
        #expect(results.map(\.driftedCount) == [0, 1, 0])
        #expect(
            results.allSatisfy {
                !$0.datasetDrift && $0.features.allSatisfy { $0.method == .wasserstein || $0.name == "kind" }
            })
    }

    @Test func theDriftTestFailsWithABrokenRule() throws {
        // A rule that flags everything (distance ≥ 0) and one that flags nothing: the assertion of
        // the test above must reject both, so it can fail.
        let all = try driftVerdicts(MonitorConfig(drift: DriftRule(method: .psi, threshold: 0)))
        #expect(!(all.map(\.0) == [1] && all.map(\.1) == ["y"]))
        #expect(all.count == 9)
        let none = try driftVerdicts(MonitorConfig(drift: DriftRule(method: .wasserstein, threshold: 1e9)))
        #expect(none.isEmpty)
    }

    @Test func perFeatureRulesOverrideTheDefault() throws {
        let config = MonitorConfig(
            features: [
                FeatureSpec(name: "x"), FeatureSpec(name: "y", drift: DriftRule(method: .psi, threshold: 1e9)),
                FeatureSpec(name: "kind"),
            ])
        #expect(try driftVerdicts(config).isEmpty)
    }
}

@Suite struct WindowQualityTests {
    @Test func qualitySchemaAndVolumeAgainstReferenceAndSpec() throws {
        let reference = try referenceProfile(
            WindowBatch(
                rowCount: 4, eventTimesMs: [0, 1, 2, 3],
                columns: [
                    .numbers("amount", [10, 20, 30, 40]), .strings("country", ["fr", "de", "fr", "de"]),
                    .numbers("gone", [1, 2, 3, 4]),
                ]), spanMs: 2_000)
        let current = WindowBatch(
            rowCount: 5, eventTimesMs: [0, 0, 0, 0, 0],
            columns: [
                WindowColumn(name: "amount", values: .numbers([15, 50, .nan, .infinity, -5]), mismatchRows: [2]),
                .strings("country", ["fr", "it", "it", "", "de"], missingRows: [3]),
                .strings("extra", ["1", "2", "3", "4", "5"]),
            ])
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0))
        _ = try m.add(current, processingTimeMs: 0)
        let window = try #require(m.openWindows().first?.window)
        let config = MonitorConfig(features: [
            FeatureSpec(name: "amount", type: .numeric, range: 0...45),
            FeatureSpec(name: "country", type: .categorical),
            FeatureSpec(name: "gone", type: .numeric), FeatureSpec(name: "flag", type: .boolean),
        ])
        let r = WindowResult.evaluate(window, reference: reference, config: config)
        #expect(r.isOpen && r.rows == 5)
        #expect(r.schema.missing == ["gone", "flag"] && r.schema.added == ["extra"] && r.schema.changedType.isEmpty)
        let amount = try #require(r.features.first { $0.name == "amount" })
        #expect(amount.values == 3 && amount.nonFinite == 1 && amount.typeMismatches == 1)
        #expect(amount.missingRate == 0.2 && amount.missingRateChange == 0.2)
        #expect(amount.outsideSpecRangeShare.map { abs($0 - 2.0 / 3) < 1e-9 } == true)  // 50 and -5
        #expect(amount.outsideReferenceRangeShare.map { abs($0 - 2.0 / 3) < 1e-9 } == true)
        let country = try #require(r.features.first { $0.name == "country" })
        #expect(country.newCategories == 1 && country.newCategoryValues == 2)
        #expect(country.missingRate == 0.2)
        #expect(r.expectedRows == 2)  // 4 rows over 2 s: 2 per 1 s window
        #expect(r.volumeRatio == 2.5)

        let retyped = WindowResult.evaluate(
            window, reference: reference,
            config: MonitorConfig(features: [FeatureSpec(name: "amount", type: .categorical)]))
        #expect(retyped.schema.changedType == ["amount"])
        let unreferenced = WindowResult.evaluate(window, reference: nil, config: config)
        #expect(unreferenced.features.allSatisfy { $0.score == nil && $0.missingRateChange == nil })
        #expect(unreferenced.expectedRows == nil && unreferenced.driftShare == 0)
    }

    @Test func resultsRoundTripThroughBytes() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: hour, latenessMs: 0))
        m.setUploadedReference(
            try referenceProfile(modelBatch(2_000, from: 0, span: hour, seed: 3), spanMs: hour), version: "v1")
        _ = try m.add(modelBatch(1_500, from: 0, span: hour, shift: 2, seed: 4), processingTimeMs: hour)
        let open = try #require(m.openWindows().first)
        var result = WindowResult.evaluate(open.window, reference: open.reference, config: MonitorConfig())
        result.lateRows = 12
        result.performance = WindowPerformance(
            metrics: [(name: "rmse", value: 0.5), (name: "mae", value: 0.25)], labelledRows: 9)
        #expect(result.performance?.metrics.map(\.name) == ["mae", "rmse"])
        #expect(result.prediction?.name == "score" && result.driftingFeatures == ["y"])
        let bytes = result.serialized()
        let decoded = try WindowResult(serialized: bytes)
        #expect(decoded == result)
        #expect(decoded.serialized() == bytes)
        #expect(throws: ProfileDecodingError.self) { try WindowResult(serialized: bytes.dropLast()) }
        #expect(throws: ProfileDecodingError.self) { try WindowResult(serialized: bytes + [0]) }
    }
}
