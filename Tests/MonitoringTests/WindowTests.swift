import Testing

@testable import Monitoring

/// Batches of `n` rows at the given event times, with a numeric column `x` and optional extras.
func timedBatch(
    _ times: [Int64], version: String = "v1", x: ((Int) -> Double)? = nil, columns: [WindowColumn] = []
) -> WindowBatch {
    let xs = times.indices.map { x?($0) ?? Double($0 % 7) }
    return WindowBatch(
        rowCount: times.count, eventTimesMs: times, versions: .batch(version),
        columns: [.numbers("x", xs)] + columns)
}

/// `n` event times spread evenly over `[from, from + span)`.
func spread(_ n: Int, from: Int64, span: Int64) -> [Int64] {
    (0..<n).map { from + Int64($0) * span / Int64(n) }
}

@Suite struct WindowClosingTests {
    let settings = WindowSettings(sizeMs: 1_000, latenessMs: 100, maxEventAheadMs: 10_000)

    @Test func windowsCloseWhenTheWatermarkPassesTheirEnd() throws {
        var m = ModelWindows(settings: settings)
        var u = try m.add(timedBatch(spread(50, from: 0, span: 1_000)), processingTimeMs: 1_000)
        #expect(u.closed.isEmpty && m.openWindowCount == 1)
        u = try m.add(timedBatch([1_099]), processingTimeMs: 1_100)  // watermark 999 < 1000
        #expect(u.closed.isEmpty)
        u = try m.add(timedBatch([1_100]), processingTimeMs: 1_101)  // watermark 1000: [0, 1000) closes
        #expect(u.closed.count == 1)
        let w = try #require(u.closed.first?.window)
        #expect(w.startMs == 0 && w.endMs == 1_000 && !w.isOpen && w.rows == 50)
        #expect(w.columns.first?.count == 50)
        #expect(m.openWindows().map(\.window.startMs) == [1_000])
        #expect(m.openWindows().allSatisfy { $0.window.isOpen })
        #expect(m.watermarkMs == 1_000)
    }

    @Test func idleWindowsCloseByProcessingTimeAndLaterRowsAreLate() throws {
        var m = ModelWindows(settings: settings)
        _ = try m.add(timedBatch([10, 20, 30]), processingTimeMs: 500)
        #expect(m.tick(processingTimeMs: 500 + 1_099).closed.isEmpty)
        let u = m.tick(processingTimeMs: 500 + 1_100)
        #expect(u.closed.map(\.window.rows) == [3])
        #expect(m.openWindowCount == 0)
        #expect(m.tick(processingTimeMs: 99_999).closed.isEmpty)  // closes once
        let late = try m.add(timedBatch([40, 50]), processingTimeMs: 1_700)
        #expect(late.lateRows == [WindowKey(startMs: 0, series: SeriesKey(version: "v1")): 2])
        #expect(late.closed.isEmpty && m.openWindowCount == 0)
    }

    @Test func lateRowsAreCountedOnTheirWindowAndSegments() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, segmentColumns: ["c"]))
        _ = try m.add(timedBatch([100, 200], columns: [.strings("c", ["a", "b"])]), processingTimeMs: 0)
        let close = try m.add(timedBatch([2_500], columns: [.strings("c", ["a"])]), processingTimeMs: 0)
        #expect(close.closed.map(\.window.key.startMs) == [0, 0, 0])
        // Rows for [0, 1000) and [1000, 2000), both closed now (watermark 2500), one still open.
        let u = try m.add(
            timedBatch([300, 400, 1_500, 2_600], columns: [.strings("c", ["a", "a", "b", "a"])]), processingTimeMs: 0)
        let whole = SeriesKey(version: "v1")
        let a = SeriesKey(version: "v1", segment: Segment(column: "c", value: .value("a")))
        let b = SeriesKey(version: "v1", segment: Segment(column: "c", value: .value("b")))
        #expect(
            u.lateRows == [
                WindowKey(startMs: 0, series: whole): 2, WindowKey(startMs: 0, series: a): 2,
                WindowKey(startMs: 1_000, series: whole): 1, WindowKey(startMs: 1_000, series: b): 1,
            ])
        #expect(u.lateRowsInOrder.first?.key == WindowKey(startMs: 0, series: whole))
        let open = m.openWindows().first { $0.window.key.series == whole }
        #expect(open?.window.rows == 2)  // 2500 and 2600; late rows were not profiled
    }

    @Test func rowsWithoutEventTimeUseTheOpsProcessingTime() throws {
        var m = ModelWindows(settings: settings)
        let batch = WindowBatch(rowCount: 3, columns: [.numbers("x", [1, 2, 3])])
        _ = try m.add(batch, processingTimeMs: 5_432)
        #expect(m.openWindows().map(\.window.startMs) == [5_000])
        #expect(m.maxEventMs == 5_432)
    }

    @Test func malformedBatchesAreRefusedWithoutChangingState() throws {
        var m = ModelWindows(settings: settings)
        let before = m.serialized()
        let bad = WindowBatch(rowCount: 2, eventTimesMs: [1], columns: [.numbers("x", [1, 2])])
        #expect(throws: WindowBatch.ShapeError.self) { _ = try m.add(bad, processingTimeMs: 0) }
        let badRow = WindowBatch(
            rowCount: 1, eventTimesMs: [1],
            columns: [WindowColumn(name: "s", values: .strings(["a"]), missingRows: [3])])
        #expect(throws: WindowBatch.ShapeError.self) { _ = try m.add(badRow, processingTimeMs: 0) }
        #expect(m.serialized() == before)
    }
}

@Suite struct WindowSeriesTests {
    @Test func segmentsAreKeptSeparatelyAndCapped() throws {
        let settings = WindowSettings(sizeMs: 1_000, latenessMs: 0, segmentColumns: ["country"], maxSegmentValues: 2)
        var m = ModelWindows(settings: settings)
        let countries = ["fr", "de", "fr", "us", "jp", "de", "fr"]
        let batch = WindowBatch(
            rowCount: 8, eventTimesMs: Array(repeating: 10, count: 8),
            columns: [
                .numbers("x", [1, 2, 3, 4, 5, 6, 7, 8]),
                .strings("country", countries + [""], missingRows: [7]),
            ])
        _ = try m.add(batch, processingTimeMs: 0)
        let u = try m.add(timedBatch([5_000]), processingTimeMs: 0)
        var rows: [SegmentValue?: UInt64] = [:]
        for w in u.closed { rows[w.window.key.segment?.value] = w.window.rows }
        #expect(rows == [nil: 8, .value("fr"): 3, .value("de"): 2, .other: 2, .missing: 1])
        let fr = try #require(u.closed.first { $0.window.key.segment?.value == .value("fr") })
        guard case .numeric(let p)? = fr.window.columns.first(where: { $0.name == "x" })?.content else {
            Issue.record("x is not numeric")
            return
        }
        #expect(abs(p.moments.mean - 11.0 / 3) < 1e-12)
        // "us" arrived after the cap was reached: it stays in "other" in later windows too.
        _ = try m.add(timedBatch([5_100], columns: [.strings("country", ["us"])]), processingTimeMs: 0)
        #expect(m.openWindows().contains { $0.window.key.segment?.value == .other })
        #expect(!m.openWindows().contains { $0.window.key.segment?.value == .value("us") })
    }

    @Test func rejectedRowsDoNotClaimSegmentValues() throws {
        let settings = WindowSettings(
            sizeMs: 1_000, latenessMs: 0, segmentColumns: ["c"], maxSegmentValues: 1, maxEventAheadMs: 100)
        var m = ModelWindows(settings: settings)
        let u = try m.add(
            timedBatch([1_000_000, 10], columns: [.strings("c", ["evil", "good"])]), processingTimeMs: 0)
        #expect(u.rejected.future == 1)
        #expect(m.openWindows().compactMap(\.window.key.segment?.value) == [.value("good")])
    }

    @Test func versionsHaveTheirOwnWindows() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0))
        let batch = WindowBatch(
            rowCount: 4, eventTimesMs: [1, 2, 3, 4], versions: .perRow(["a", "b", "a", "a"]),
            columns: [.numbers("x", [10, 20, 30, 40])])
        _ = try m.add(batch, processingTimeMs: 0)
        let open = m.openWindows()
        #expect(open.map(\.window.key.version) == ["a", "b"])
        #expect(open.map(\.window.rows) == [3, 1])
    }

    @Test func eventTimesFarAheadAreRejectedAndOpenWindowsAreCapped() throws {
        let settings = WindowSettings(
            sizeMs: 1_000, latenessMs: 700_000_000_000, segmentColumns: ["c"], maxSegmentValues: 3, maxOpenWindows: 4,
            maxEventAheadMs: 5_000)
        var m = ModelWindows(settings: settings)
        // A hostile stream: event times spread over ten years, each row its own segment value; the
        // lateness is longer than that, so nothing is late and every row tries to open a window.
        var r = TestRandom(seed: 7)
        var rejected = RejectedRows()
        var rows: UInt64 = 0, accounted: UInt64 = 0
        for op in 0..<200 {
            let now = Int64(op) * 1_000
            let times = (0..<50).map { _ in Int64(r.next() % 315_360_000_000) - 157_680_000_000 + now }
            let values = times.map { "v\($0)" }
            let u = try m.add(timedBatch(times, columns: [.strings("c", values)]), processingTimeMs: now)
            rejected.future += u.rejected.future
            rejected.windowLimit += u.rejected.windowLimit
            rows += UInt64(times.count)
            accounted += u.closed.filter { $0.window.key.segment == nil }.map(\.window.rows).reduce(0, +)
            accounted += u.lateRows.filter { $0.key.segment == nil }.values.reduce(0, +)
            #expect(m.openWindowCount <= 4 * (1 + 3 + 2))
        }
        #expect(rejected.future > 4_000)  // about half the rows are in the future
        #expect(rejected.windowLimit > 4_000)
        let profiled = m.openWindows().filter { $0.window.key.segment == nil }.map(\.window.rows).reduce(0, +)
        #expect(profiled + accounted + rejected.total == rows)
    }
}
