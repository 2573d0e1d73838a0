import Testing

@testable import Monitoring

/// Labelled rows in the windows: where they count, that the state survives encoding, and that
/// states and results written before performance existed (format version 1) still decode.
@Suite struct PerformanceWindowTests {
    let settings = WindowSettings(
        sizeMs: 1_000, latenessMs: 0, segmentColumns: ["c"], maxSegmentValues: 4, maxOpenWindows: 6,
        maxEventAheadMs: 10_000, reference: .uploaded)

    /// `n` rows at `start`: scores i/n, labels (score ≥ 0.5) except every 4th, segment c = k0/k1.
    func labelled(_ n: Int, at start: Int64, labels: Bool = true) -> WindowBatch {
        let scores = (0..<n).map { Double($0) / Double(n) }
        return WindowBatch(
            rowCount: n, eventTimesMs: (0..<n).map { start + Int64($0) },
            columns: [.strings("c", (0..<n).map { "k\($0 % 2)" })],
            prediction: .numbers("score", scores),
            label: labels ? .numbers("y", scores.enumerated().map { i, s in (s >= 0.5) != (i % 4 == 0) ? 1 : 0 }) : nil)
    }

    @Test func labelledRowsCountInTheirWindowAndSegment() throws {
        var m = ModelWindows(settings: settings)
        m.performanceTask = .binary(threshold: 0.5)
        var closed: [EvaluableWindow] = []
        for (batch, at) in [(labelled(100, at: 10_000), 10_000), (labelled(50, at: 11_000, labels: false), 11_000)] {
            closed += try m.add(batch, processingTimeMs: Int64(at)).closed
        }
        closed += try m.add(labelled(1, at: 12_000, labels: false), processingTimeMs: 12_000).closed
        let byKey = Dictionary(uniqueKeysWithValues: closed.map { ($0.window.key, $0.window) })
        let first = try #require(byKey[WindowKey(startMs: 10_000, series: SeriesKey(version: ""))])
        #expect(first.performance?.labelledRows == 100)
        // Every 4th label is flipped: 25 wrong, 75 right.
        #expect(first.performance?.metrics.first { $0.name == "accuracy" }?.value == 0.75)
        let k0 = try #require(
            byKey[
                WindowKey(
                    startMs: 10_000, series: SeriesKey(version: "", segment: Segment(column: "c", value: .value("k0"))))
            ])
        #expect(k0.performance?.labelledRows == 50)
        // A window without labelled rows has no performance.
        #expect(byKey[WindowKey(startMs: 11_000, series: SeriesKey(version: ""))]?.performance == nil)
        // The result carries the figures.
        let result = WindowResult.evaluate(first, reference: nil, config: MonitorConfig())
        #expect(result.performance?.labelledRows == 100 && result.performance == first.performance?.result)
    }

    @Test func aTaskChangeMidWindowCountsLaterLabelsAsUnusable() throws {
        var m = ModelWindows(settings: settings)
        m.performanceTask = .binary(threshold: 0.5)
        _ = try m.add(labelled(40, at: 30_000), processingTimeMs: 30_000)
        m.performanceTask = .binary(threshold: 0.3)
        _ = try m.add(labelled(20, at: 30_500), processingTimeMs: 30_500)
        // A label column of missing values only adds nothing.
        var unlabelled = labelled(10, at: 30_700)
        unlabelled.label = .numbers("y", [Double](repeating: .nan, count: 10))
        _ = try m.add(unlabelled, processingTimeMs: 30_700)
        let closed = try m.add(labelled(1, at: 31_500, labels: false), processingTimeMs: 31_500).closed
        let whole = try #require(closed.first { $0.window.key.segment == nil && $0.window.key.startMs == 30_000 })
        #expect(whole.window.performance?.task == .binary(threshold: 0.5))
        #expect(whole.window.performance?.labelledRows == 40 && whole.window.performance?.unusableRows == 20)

        var silent = ModelWindows(settings: settings)
        silent.performanceTask = .regression
        var onlyMissing = labelled(5, at: 40_000)
        onlyMissing.label = .numbers("y", [Double](repeating: .nan, count: 5))
        _ = try silent.add(onlyMissing, processingTimeMs: 40_000)
        let result = try #require(
            try silent.add(labelled(1, at: 41_500, labels: false), processingTimeMs: 41_500).closed.first)
        #expect(WindowResult.evaluate(result.window, reference: nil, config: MonitorConfig()).performance == nil)
    }

    @Test func performanceSurvivesEncodingMidWindow() throws {
        var straight = ModelWindows(settings: settings)
        straight.performanceTask = .regression
        var cut = straight
        let batches = [labelled(40, at: 20_000), labelled(30, at: 20_500), labelled(1, at: 21_500)]
        var all: [EvaluableWindow] = []
        for b in batches { all += try straight.add(b, processingTimeMs: b.eventTimesMs![0]).closed }
        _ = try cut.add(batches[0], processingTimeMs: batches[0].eventTimesMs![0])
        var restored = try ModelWindows(serialized: cut.serialized())
        restored.performanceTask = .regression
        var rest: [EvaluableWindow] = []
        for b in batches.dropFirst() { rest += try restored.add(b, processingTimeMs: b.eventTimesMs![0]).closed }
        #expect(rest == all && rest.contains { $0.window.performance?.labelledRows == 70 })
        #expect(restored.serialized() == straight.serialized())
    }

    @Test func formatOneStatesAndResultsStillDecode() throws {
        // A state with one open window, no labels and no task: format 2 adds a flag byte (0, no
        // performance) after the window's accumulator, format 3 another (0, no scores).
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, reference: .uploaded))
        _ = try m.add(labelled(20, at: 5_000, labels: false), processingTimeMs: 5_000)
        let current = m.serialized()
        var accumulator = ByteWriter(capacity: 256)
        m.open.values.first!.encode(into: &accumulator)
        let at = try #require(firstIndex(of: accumulator.bytes, in: current))
        let end = at + accumulator.bytes.count
        #expect(current[end - 2] == 0 && current[end - 1] == 0)
        var old = current
        old.remove(at: end - 1)
        old[4] = 2
        #expect(try ModelWindows(serialized: old).serialized() == current)
        old.remove(at: end - 2)
        old[4] = 1
        #expect(try ModelWindows(serialized: old).serialized() == current)

        // A result with performance: format 2 adds the unusable rows after the labelled rows.
        var result = WindowResult(
            window: WindowSnapshot(
                key: WindowKey(startMs: 0, series: SeriesKey(version: "v")), endMs: 1_000, isOpen: false, rows: 9,
                columns: []))
        // Format 5 ends with the attributions' count (0): formats 1 to 4 lack it.
        var withoutPerformance = result.serialized()
        #expect(withoutPerformance.last == 0)
        withoutPerformance.removeLast()
        result.performance = WindowPerformance(metrics: [("accuracy", 0.5)], labelledRows: 8)
        var oldResult = result.serialized()
        #expect(oldResult.last == 0)
        oldResult.removeLast()
        oldResult[4] = 4
        #expect(try WindowResult(serialized: oldResult) == result)
        // Format 4 ends the performance with the estimates' count (0), after format 3's state flag
        // (0: none), which format 2 lacks.
        #expect(oldResult.suffix(2) == [0, 0])
        oldResult.removeLast()
        oldResult[4] = 3
        #expect(try WindowResult(serialized: oldResult) == result)
        oldResult.removeLast()
        oldResult[4] = 2
        #expect(try WindowResult(serialized: oldResult) == result)
        // Flag at the end of the bytes without performance, then the labelled rows (one byte).
        oldResult.remove(at: withoutPerformance.count + 1)
        oldResult[4] = 1
        #expect(try WindowResult(serialized: oldResult) == result)

        // Format 3 keeps the state, so labels joined later merge into it.
        var state = PerformanceState(task: .binary(threshold: 0.5))
        state.add(actual: .bool(true), predicted: .number(0.9))
        result.performanceState = state
        result.performance = state.result
        // Format 4 keeps the estimates, which later labels leave as they are.
        result.performance!.estimated = [EstimatedMetric(name: "accuracy", value: 0.7, samplingError: 0.01)]
        var decoded = try WindowResult(serialized: result.serialized())
        #expect(decoded == result)
        var late = PerformanceState(task: .binary(threshold: 0.5))
        late.add(actual: .bool(true), predicted: .number(0.2))
        decoded.addLabels(late)
        #expect(decoded.performance?.estimated == result.performance!.estimated)
        #expect(decoded.performance?.labelledRows == 2)
        #expect(decoded.performance?.metrics.first { $0.name == "accuracy" }?.value == 0.5)
        // A format 2 result (figures, no state) counts later labels as unusable.
        var figuresOnly = try WindowResult(serialized: oldResult)
        figuresOnly.addLabels(late)
        #expect(figuresOnly.performance?.labelledRows == 8 && figuresOnly.performance?.unusableRows == 1)
    }

    /// `n` rows of calibrated scores (uniform in [0, 1), label 1 with probability the score) at
    /// `start`, with or without their labels.
    func calibrated(_ n: Int, at start: Int64, labels: Bool, seed: UInt64) -> WindowBatch {
        var rng = SplitMix64(seed: seed)
        let scores = (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) }
        let y = scores.map { s in Double.random(in: 0..<1, using: &rng) < s ? 1.0 : 0 }
        return WindowBatch(
            rowCount: n, eventTimesMs: (0..<n).map { start + Int64($0 % 1_000) / 2 }, columns: [],
            prediction: .numbers("score", scores), label: labels ? .numbers("y", y) : nil)
    }

    /// A window without labels gets estimates calibrated on the labelled reference, under the
    /// first-rows policy (the reference's inline labels) and an uploaded reference (which survives
    /// encoding). With scores that are calibrated probabilities, the expected accuracy at 0.5 is
    /// E[max(s, 1 − s)] = 0.75, and the expected ROC AUC is 5/6.
    @Test func unlabelledWindowsGetEstimates() throws {
        var first = ModelWindows(
            settings: WindowSettings(
                sizeMs: 1_000, latenessMs: 0, maxEventAheadMs: 1 << 40, reference: .firstRows(4_000)))
        first.performanceTask = .binary(threshold: 0.5)
        _ = try first.add(calibrated(4_000, at: 0, labels: true, seed: 1), processingTimeMs: 0)
        _ = try first.add(calibrated(3_000, at: 1_000, labels: false, seed: 2), processingTimeMs: 1_000)
        let closed = try #require(
            try first.add(calibrated(1, at: 2_000, labels: false, seed: 3), processingTimeMs: 2_000).closed.first {
                $0.window.startMs == 1_000
            })
        let result = WindowResult.evaluate(closed.window, reference: closed.reference, config: MonitorConfig())
        let performance = try #require(result.performance)
        #expect(performance.labelledRows == 0 && performance.metrics.isEmpty)
        let estimated = Dictionary(uniqueKeysWithValues: performance.estimated.map { ($0.name, $0) })
        #expect(Set(estimated.keys) == ["accuracy", "f1", "precision", "recall", "roc_auc"])
        for (name, truth) in [("accuracy", 0.75), ("roc_auc", 5.0 / 6)] {
            let e = try #require(estimated[name])
            #expect(e.lower <= truth && truth <= e.upper, "\(name) \(e.value) in [\(e.lower), \(e.upper)]")
            #expect(abs(e.value - truth) < 0.02, "\(name) \(e.value)")
            #expect(e.upper - e.lower < 0.1)
        }

        // An uploaded reference with the same labelled scores gives the same estimate, after
        // the state's encoding too.
        var uploaded = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, maxEventAheadMs: 1 << 40))
        uploaded.performanceTask = .binary(threshold: 0.5)
        let reference = try #require(closed.reference)
        #expect(reference.labelled?.positiveCount ?? 0 > 1_000)
        uploaded.setUploadedReference(
            ReferenceProfile(columns: [], rows: 4_000, labelled: reference.labelled), version: "")
        _ = try uploaded.add(calibrated(3_000, at: 1_000, labels: false, seed: 2), processingTimeMs: 1_000)
        var restored = try ModelWindows(serialized: uploaded.serialized())
        restored.performanceTask = .binary(threshold: 0.5)
        let again = try #require(
            try restored.add(calibrated(1, at: 2_000, labels: false, seed: 3), processingTimeMs: 2_000).closed.first)
        #expect(
            WindowResult.evaluate(again.window, reference: again.reference, config: MonitorConfig()).performance?
                .estimated == performance.estimated)

        // Without labelled reference rows there is nothing to calibrate with: no performance.
        var unlabelled = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, maxEventAheadMs: 1 << 40))
        unlabelled.performanceTask = .binary(threshold: 0.5)
        unlabelled.setUploadedReference(ReferenceProfile(columns: [], rows: 4_000), version: "")
        _ = try unlabelled.add(calibrated(300, at: 1_000, labels: false, seed: 2), processingTimeMs: 1_000)
        let bare = try #require(
            try unlabelled.add(calibrated(1, at: 2_000, labels: false, seed: 3), processingTimeMs: 2_000).closed.first)
        #expect(
            WindowResult.evaluate(bare.window, reference: bare.reference, config: MonitorConfig()).performance == nil)

        // Labels joined after the close start the realized figures of a result that so far held
        // only estimates (stored and read back first), and leave the estimates as they were.
        var stored = try WindowResult(serialized: result.serialized())
        var late = PerformanceState(task: .binary(threshold: 0.5))
        late.add(actual: .bool(true), predicted: .number(0.9))
        stored.addLabels(late)
        #expect(stored.performance?.labelledRows == 1 && stored.performance?.unusableRows == 0)
        #expect(stored.performance?.metrics.first { $0.name == "accuracy" }?.value == 1)
        #expect(stored.performance?.estimated == performance.estimated)
    }

    /// A reference profile of format 1 (no labelled scores) still decodes; format 2 keeps them.
    @Test func referenceProfilesKeepTheirLabelledScores() throws {
        var labelled = ScoreHistogram()
        labelled.add(score: 0.3, positive: false)
        labelled.add(score: 0.8, positive: true)
        let with = ReferenceProfile(columns: [], rows: 2, spanMs: 10, labelled: labelled)
        #expect(try ReferenceProfile(serialized: with.serialized()) == with)
        let without = ReferenceProfile(columns: [], rows: 2, spanMs: 10)
        var old = without.serialized()
        #expect(old.last == 0)  // format 2's flag: no labelled scores
        old.removeLast()
        old[4] = 1
        #expect(try ReferenceProfile(serialized: old) == without)
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
