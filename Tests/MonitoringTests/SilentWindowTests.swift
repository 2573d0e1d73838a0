import Testing

@testable import Monitoring

/// A model whose traffic stops gets a window per silent period (rows 0) once processing time has
/// passed its end plus the lateness, so "no traffic" is a window like any other.
@Suite struct SilentWindowTests {
    /// 1 s windows, 100 ms lateness: idle after 1.1 s without rows.
    let settings = WindowSettings(sizeMs: 1_000, latenessMs: 100, segmentColumns: ["c"], maxEventAheadMs: 10_000)

    func stopped() throws -> ModelWindows {
        var m = ModelWindows(settings: settings)
        _ = try m.add(timedBatch([10, 20, 30], columns: [.strings("c", ["a", "b", "a"])]), processingTimeMs: 500)
        let first = m.tick(processingTimeMs: 1_600)  // idle: [0, 1000) and its segments close
        #expect(first.closed.map(\.window.rows).sorted() == [1, 2, 3])
        return m
    }

    @Test func eachSilentWindowClosesOnceEmptyAndWholeModel() throws {
        var m = try stopped()
        #expect(!m.silentWindowDue(by: 2_099))
        #expect(m.tick(processingTimeMs: 2_099).closed.isEmpty)  // [1000, 2000) ends at 2000 + 100
        #expect(m.silentWindowDue(by: 2_100))
        let next = m.tick(processingTimeMs: 4_150, lastVersion: "v1").closed
        #expect(next.map(\.window.startMs) == [1_000, 2_000, 3_000])
        #expect(next.allSatisfy { $0.window.rows == 0 && $0.window.key.segment == nil && !$0.window.isOpen })
        #expect(next.allSatisfy { $0.window.key.version == "v1" })  // the newest stored window's
        #expect(m.tick(processingTimeMs: 4_150).closed.isEmpty)
        #expect(!m.silentWindowDue(by: 4_150))
        // A row for a silent window is late, like one for any closed window.
        let late = try m.add(timedBatch([2_500], columns: [.strings("c", ["a"])]), processingTimeMs: 4_200)
        #expect(late.lateRows[WindowKey(startMs: 2_000, series: SeriesKey(version: "v1"))] == 1)
        #expect(late.closed.isEmpty && m.openWindowCount == 0)
    }

    @Test func aLongSilenceKeepsTheNewestWindows() throws {
        var m = try stopped()
        let closed = m.tick(processingTimeMs: 1_000_000).closed
        #expect(Int64(closed.count) == ModelWindows.maxSilentWindowsPerTick)
        let starts = closed.map(\.window.startMs)
        #expect(starts.last == 998_000)  // ends at 999,000 + 100 ≤ 1,000,000
        #expect(starts.first == 899_000 && starts == Array(stride(from: 899_000, through: 998_000, by: 1_000)))
        #expect(m.tick(processingTimeMs: 1_000_000).closed.isEmpty)
    }

    @Test func trafficThatResumesOpensWindowsAgain() throws {
        var m = try stopped()
        _ = m.tick(processingTimeMs: 3_100)  // [1000, 2000), [2000, 3000) close empty
        let u = try m.add(timedBatch([3_200, 3_300], columns: [.strings("c", ["b", "b"])]), processingTimeMs: 3_300)
        #expect(u.lateRows.isEmpty && m.openWindowCount == 2)  // whole model and c=b
        #expect(!m.silentWindowDue(by: 3_300))
    }

    /// In the tick that closes the last windows by idleness, the silent ones after them continue
    /// the newest closed window's version.
    @Test func silentWindowsContinueTheClosedVersion() throws {
        var m = ModelWindows(settings: settings)
        _ = try m.add(timedBatch([10], version: "v7"), processingTimeMs: 500)
        let closed = m.tick(processingTimeMs: 5_000, lastVersion: "v1").closed
        #expect(closed.map(\.window.rows) == [1, 0, 0, 0])
        #expect(closed.allSatisfy { $0.window.key.version == "v7" })
    }

    @Test func restoredStateClosesTheSameSilentWindows() throws {
        var live = try stopped()
        var restored = try ModelWindows(serialized: live.serialized())
        let a = live.tick(processingTimeMs: 5_000).closed.map(\.window)
        let b = restored.tick(processingTimeMs: 5_000).closed.map(\.window)
        #expect(!a.isEmpty && a == b)
        #expect(live.serialized() == restored.serialized())
    }

    @Test func aSilentWindowReportsVolumeOnly() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0))
        m.setUploadedReference(
            try referenceProfile(timedBatch(spread(50, from: 0, span: 1_000)), spanMs: 1_000), version: "v1")
        _ = try m.add(timedBatch(spread(40, from: 0, span: 1_000)), processingTimeMs: 1_000)
        let closed = m.tick(processingTimeMs: 3_000).closed
        #expect(closed.map(\.window.rows) == [40, 0, 0])
        let silent = WindowResult.evaluate(closed[1].window, reference: closed[1].reference, config: MonitorConfig())
        #expect(silent.rows == 0 && silent.features.isEmpty && silent.schema == SchemaChange())
        #expect(silent.driftShare == 0 && !silent.datasetDrift)
        #expect(silent.expectedRows == 50 && silent.volumeRatio == 0)
    }
}
