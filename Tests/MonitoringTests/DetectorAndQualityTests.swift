import Testing

@testable import Monitoring

@Suite struct DetectorTests {
    @Test func adwinStaysQuietOnAStationaryStream() {
        var a = ADWIN()
        var r = TestRandom(seed: 21)
        var alarms = 0
        for _ in 0..<30_000 where a.add(r.uniform() < 0.2 ? 1 : 0) { alarms += 1 }
        #expect(alarms == 0)
        #expect(a.width == 30_000)
        #expect(abs(a.mean - 0.2) < 0.01)
    }

    @Test func adwinDetectsAMeanShiftQuicklyAndForgetsTheOldMean() {
        var a = ADWIN()
        var r = TestRandom(seed: 22)
        for _ in 0..<5_000 { a.add(r.uniform() < 0.2 ? 1 : 0) }
        var detectedAt: Int?
        for i in 0..<2_000 {
            if a.add(r.uniform() < 0.6 ? 1 : 0), detectedAt == nil { detectedAt = i }
        }
        #expect(detectedAt != nil)
        #expect((detectedAt ?? .max) < 150)
        #expect(a.width < 2_500)
        #expect(abs(a.mean - 0.6) < 0.05)
        #expect(a.detections >= 1)
    }

    @Test func robustScoreFlagsOutliersAndResistsThem() throws {
        let history: [Double] = [10, 11, 9, 10, 12, 10, 11, 9, 10, 250]  // one past outlier
        #expect(RobustAnomaly.median(history) == 10)
        // Deviations from 10: 0,0,0,0,1,1,1,1,2,240 → MAD = 1 (the outlier does not inflate it).
        let s = try #require(RobustAnomaly.score(16, history: history))
        #expect(isClose(s, 0.6745 * 6))
        #expect(RobustAnomaly.isAnomalous(16, history: history))
        #expect(!RobustAnomaly.isAnomalous(13, history: history))
        #expect(!RobustAnomaly.isAnomalous(10.5, history: history))
        // MAD = 0: falls back to the mean absolute deviation.
        let flat: [Double] = [5, 5, 5, 5, 7]
        #expect(isClose(try #require(RobustAnomaly.score(6, history: flat)), 1 / (1.253314 * 0.4)))
        #expect(RobustAnomaly.score(6, history: [5, 5]) == .infinity)
        #expect(RobustAnomaly.score(1, history: []) == nil)
    }
}

@Suite struct QualityTests {
    @Test func numericQualityAgainstReference() throws {
        var ref = ColumnProfileBuilder(name: "x"), cur = ColumnProfileBuilder(name: "x")
        for i in 0..<1_000 { ref.add(number: Double(i)) }
        for i in 0..<300 { cur.add(number: Double(i) * 5) }  // 0...1495: 100 values above 999
        cur.addMissing()
        cur.add(number: .infinity)
        let q = DataQuality.column(cur.build(), reference: ref.build())
        #expect(q.total == 302 && q.missing == 1 && q.nonFinite == 1)
        #expect(isClose(q.missingRate, 1.0 / 302))
        #expect(q.outOfRange.map { isClose($0, 100) } == true)
        #expect(q.newCategories == nil)
    }

    @Test func categoricalQualityAndSchema() {
        var ref = ColumnProfileBuilder(name: "c"), cur = ColumnProfileBuilder(name: "c")
        for s in ["a", "b", "a"] { ref.add(string: s) }
        for s in ["a", "z", "z", "y"] { cur.add(string: s) }
        cur.addMissing()
        let q = DataQuality.column(cur.build(), reference: ref.build())
        #expect(q.newCategories == 2 && q.newCategoryValues == 3)
        #expect(q.missing == 1 && q.total == 5)
        #expect(q.distinctEstimate.map { $0.rounded() } == 3)
        let diff = DataQuality.schema(expected: ["a", "b", "c"], actual: ["c", "a", "d"])
        #expect(diff.missing == ["b"] && diff.added == ["d"] && !diff.isEmpty)
    }

    @Test func duplicatesAcrossShards() {
        var a = DuplicateCounter(), b = DuplicateCounter()
        #expect(a.add("p1") == false)
        #expect(a.add("p1") == true)
        a.add("p2")
        b.add("p2")
        b.add("p3")
        a.merge(b)
        #expect(a.count == 5 && a.distinct == 3 && a.duplicates == 2)
    }
}
