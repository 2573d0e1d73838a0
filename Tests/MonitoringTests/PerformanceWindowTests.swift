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
        // A state with one open window and no labels: format 2 only adds a flag byte (0) after the
        // window's accumulator.
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, reference: .uploaded))
        _ = try m.add(labelled(20, at: 5_000, labels: false), processingTimeMs: 5_000)
        let current = m.serialized()
        var accumulator = ByteWriter(capacity: 256)
        m.open.values.first!.encode(into: &accumulator)
        let at = try #require(firstIndex(of: accumulator.bytes, in: current))
        var old = current
        old.remove(at: at + accumulator.bytes.count - 1)
        old[4] = 1
        #expect(try ModelWindows(serialized: old).serialized() == current)

        // A result with performance: format 2 adds the unusable rows after the labelled rows.
        var result = WindowResult(
            window: WindowSnapshot(
                key: WindowKey(startMs: 0, series: SeriesKey(version: "v")), endMs: 1_000, isOpen: false, rows: 9,
                columns: []))
        let withoutPerformance = result.serialized()
        result.performance = WindowPerformance(metrics: [("accuracy", 0.5)], labelledRows: 8)
        var oldResult = result.serialized()
        // Format 3 ends the performance with the state's flag (0: none): format 2 lacks it.
        #expect(oldResult.last == 0)
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
        var decoded = try WindowResult(serialized: result.serialized())
        #expect(decoded == result)
        var late = PerformanceState(task: .binary(threshold: 0.5))
        late.add(actual: .bool(true), predicted: .number(0.2))
        decoded.addLabels(late)
        #expect(decoded.performance?.labelledRows == 2)
        #expect(decoded.performance?.metrics.first { $0.name == "accuracy" }?.value == 0.5)
        // A format 2 result (figures, no state) counts later labels as unusable.
        var figuresOnly = try WindowResult(serialized: oldResult)
        figuresOnly.addLabels(late)
        #expect(figuresOnly.performance?.labelledRows == 8 && figuresOnly.performance?.unusableRows == 1)
    }

    private func firstIndex(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
