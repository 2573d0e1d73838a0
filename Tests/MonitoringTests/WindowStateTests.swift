import Testing

@testable import Monitoring

/// A replayable op log: batches (some with segments, versions and late rows) and ticks.
enum WindowOp {
    case batch(WindowBatch, Int64)
    case tick(Int64)
}

func opLog(seed: UInt64, ops: Int) -> [WindowOp] {
    var r = TestRandom(seed: seed)
    var log: [WindowOp] = []
    var now: Int64 = 1_000_000
    for i in 0..<ops {
        now += Int64(r.next() % 400)
        if i % 9 == 8 {
            now += 1_600  // longer than size + lateness: the tick closes every open window
            log.append(.tick(now))
            continue
        }
        let n = 1 + Int(r.next() % 300)
        let times = (0..<n).map { _ in now - Int64(r.next() % 3_000) }
        let batch = WindowBatch(
            rowCount: n, eventTimesMs: times, versions: .perRow((0..<n).map { _ in r.uniform() < 0.8 ? "v1" : "v2" }),
            columns: [
                .numbers("x", (0..<n).map { _ in r.uniform() < 0.05 ? .nan : r.normal() }),
                .strings("c", (0..<n).map { _ in "k\(r.next() % 6)" }),
                WindowColumn(name: "b", values: .bools((0..<n).map { _ in r.uniform() < 0.3 }), missingRows: [0]),
            ],
            prediction: .numbers("p", (0..<n).map { _ in r.uniform() }))
        log.append(.batch(batch, now))
    }
    return log
}

/// Applies `ops`, returning every closed window's result bytes and every late/rejected count.
func replay(_ m: inout ModelWindows, _ ops: ArraySlice<WindowOp>) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    for op in ops {
        let u: WindowUpdate
        switch op {
        case .batch(let b, let t): u = try m.add(b, processingTimeMs: t)
        case .tick(let t): u = m.tick(processingTimeMs: t)
        }
        for w in u.closed {
            out.append(WindowResult.evaluate(w.window, reference: w.reference, config: MonitorConfig()).serialized())
        }
        for (key, rows) in u.lateRowsInOrder {
            out.append([UInt8(truncatingIfNeeded: key.startMs), UInt8(truncatingIfNeeded: rows)])
        }
        out.append([UInt8(truncatingIfNeeded: u.rejected.total)])
    }
    return out
}

@Suite struct WindowDeterminismTests {
    let settings = WindowSettings(
        sizeMs: 1_000, latenessMs: 500, segmentColumns: ["c"], maxSegmentValues: 4, maxOpenWindows: 6,
        maxEventAheadMs: 2_000, reference: .firstRows(700))

    @Test func twoInstancesFedTheSameOpsAgreeByteForByte() throws {
        let log = opLog(seed: 5, ops: 120)
        var a = ModelWindows(settings: settings), b = ModelWindows(settings: settings)
        let ra = try replay(&a, log[...]), rb = try replay(&b, log[...])
        #expect(ra.count > 100 && ra == rb)
        #expect(a.serialized() == b.serialized())
        // A different log gives different results: the comparison can fail.
        var c = ModelWindows(settings: settings)
        #expect(try replay(&c, opLog(seed: 6, ops: 120)[...]) != ra)
    }

    @Test func encodeDecodeMidStreamChangesNothing() throws {
        let log = opLog(seed: 8, ops: 150)
        for cut in [1, 40, 77, 149] {
            var straight = ModelWindows(settings: settings)
            let all = try replay(&straight, log[...])
            var first = ModelWindows(settings: settings)
            var results = try replay(&first, log[..<cut])
            let bytes = first.serialized()
            var restored = try ModelWindows(serialized: bytes)
            #expect(restored.serialized() == bytes)
            results += try replay(&restored, log[cut...])
            #expect(results == all, "cut at \(cut)")
            #expect(restored.serialized() == straight.serialized(), "cut at \(cut)")
        }
    }

    @Test func corruptStateIsRefused() throws {
        var m = ModelWindows(settings: settings)
        _ = try replay(&m, opLog(seed: 9, ops: 20)[...])
        let bytes = m.serialized()
        #expect(throws: ProfileDecodingError.self) { try ModelWindows(serialized: bytes.dropLast()) }
        #expect(throws: ProfileDecodingError.self) { try ModelWindows(serialized: [0] + bytes.dropFirst()) }
    }
}

@Suite struct ReferencePolicyTests {
    @Test func firstRowsIsAvailableOnceFullPerVersionAndSegment() throws {
        let settings = WindowSettings(
            sizeMs: 1_000, latenessMs: 0, segmentColumns: ["c"], reference: .firstRows(10))
        var m = ModelWindows(settings: settings)
        _ = try m.add(
            timedBatch(Array(0..<6), columns: [.strings("c", ["a", "a", "a", "a", "b", "b"])]), processingTimeMs: 0)
        #expect(m.openWindows().allSatisfy { $0.reference == nil })
        _ = try m.add(timedBatch(Array(100..<112), x: { Double(100 + $0) }), processingTimeMs: 0)
        _ = try m.add(timedBatch([300], version: "v2"), processingTimeMs: 0)
        let whole = try #require(m.openWindows().first { $0.window.key.series == SeriesKey(version: "v1") })
        let ref = try #require(whole.reference)
        #expect(ref.rows == 10 && ref.spanMs == 103)  // rows at 0...5 and 100...103
        guard case .numeric(let p)? = ref.columns.first(where: { $0.name == "x" })?.content else {
            Issue.record("x is not numeric")
            return
        }
        #expect(p.moments.max == 103)  // the 11th and 12th rows of the second batch are not in it
        #expect(m.openWindows().first { $0.window.key.version == "v2" }?.reference == nil)
        let a = m.openWindows().first { $0.window.key.segment?.value == .value("a") }
        #expect(a != nil && a?.reference == nil)  // 4 rows of "a" so far: not full
    }

    @Test func previousWindowComparesWithTheLastClosedWindowOfTheSeries() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, reference: .previousWindow))
        var closed: [EvaluableWindow] = []
        for w in 0..<3 {
            let n = 10 * (w + 1)
            closed += try m.add(timedBatch(spread(n, from: Int64(w) * 1_000, span: 1_000)), processingTimeMs: 0).closed
        }
        closed += m.tick(processingTimeMs: 10_000).closed
        #expect(closed.map(\.window.rows) == [10, 20, 30])
        #expect(closed.map { $0.reference?.rows } == [nil, 10, 20])
        let r = WindowResult.evaluate(closed[2].window, reference: closed[2].reference, config: MonitorConfig())
        #expect(r.expectedRows == 20 && r.volumeRatio == 1.5)
    }

    @Test func uploadedReferencesArePerVersionAndBounded() throws {
        var m = ModelWindows(settings: WindowSettings(sizeMs: 1_000, latenessMs: 0, maxReferenceVersions: 2))
        for v in ["v1", "v2", "v3"] {
            m.setUploadedReference(ReferenceProfile(columns: [], rows: UInt64(v.utf8.last!)), version: v)
        }
        for v in ["v1", "v2", "v3"] { _ = try m.add(timedBatch([1], version: v), processingTimeMs: 0) }
        let refs = m.openWindows().map { $0.reference?.rows }
        #expect(refs == [nil, UInt64(UInt8(ascii: "2")), UInt64(UInt8(ascii: "3"))])
        let bytes = try #require(m.openWindows().last?.reference).serialized()
        #expect(try ReferenceProfile(serialized: bytes).rows == UInt64(UInt8(ascii: "3")))
    }
}
