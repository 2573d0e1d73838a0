import Testing

@testable import Monitoring

/// A numeric profile whose table holds every value and that has at most
/// `NumericProfile.deferredSketchLimit` (and k) of them keeps no sketch, and one of at most k
/// values keeps no digest: they are built from the exact values when read, and fed (those values
/// first) once the profile grows. Each value must reach each sketch exactly once on every path,
/// and a decoded profile must be the one that was encoded.
@Suite struct SmallProfileTests {
    /// `n` values drawn from `distinct` integers, in a scrambled order.
    static func values(_ n: Int, distinct: Int, offset: Double = 0) -> [Double] {
        (0..<n).map { i in Double((i &* 7_919) % distinct) + offset }
    }

    static func expectSummarises(_ p: NumericProfile, _ data: [Double], _ where: String) {
        let sorted = data.filter(\.isFinite).sorted()
        let k = UInt64(QuantileSketch.defaultK)
        #expect(p.digestDeferred == (p.moments.count <= k), "\(`where`): digest deferred")
        #expect(p.kll.count == (p.isSmall ? 0 : p.moments.count), "\(`where`): KLL as fed")
        #expect(p.tdigest.count == (p.digestDeferred ? 0 : p.moments.count), "\(`where`): digest as fed")
        #expect(p.moments.count == UInt64(sorted.count), "\(`where`): count")
        #expect(p.sketch.count == UInt64(sorted.count), "\(`where`): sketch count")
        #expect(p.digest.count == UInt64(sorted.count), "\(`where`): digest count")
        #expect(p.sketch.min == sorted.first && p.sketch.max == sorted.last, "\(`where`): sketch min, max")
        #expect(maxRankError(p.sketch, sorted: sorted) <= 0.01, "\(`where`): rank error")
    }

    @Test func aSmallProfileHoldsOnlyItsTable() {
        let data = Self.values(300, distinct: 100)
        var p = NumericProfile()
        p.add(contentsOf: data[0..<150])
        for x in data[150...] { p.add(x) }
        #expect(p.isSmall)
        #expect(p.kll.count == 0 && p.tdigest.count == 0)
        var direct = QuantileSketch()
        data.sorted().withUnsafeBufferPointer { direct.add(sortedFinite: $0) }
        #expect(p.sketch == direct)
        Self.expectSummarises(p, data, "small")
        #expect(p.quantileCurve == QuantileCurve(direct.distribution))
    }

    @Test(arguments: [
        ("one by one, past the count", 600, 50, false),
        ("one by one, past the distinct values", 300, 200, false),
        ("in batches, past the count", 600, 50, true),
        ("in batches, past the distinct values", 300, 200, true),
        ("one by one, past the distinct values then k", 700, 300, false),
        ("in batches, past the distinct values then k", 700, 300, true),
    ])
    func growingFeedsEveryValueOnce(path: String, n: Int, distinct: Int, batches: Bool) throws {
        var data = Self.values(n, distinct: distinct)
        data[7] = .nan
        data[11] = .infinity
        var p = NumericProfile()
        if batches {
            for start in stride(from: 0, to: n, by: 97) { p.add(contentsOf: data[start..<min(n, start + 97)]) }
        } else {
            for x in data { p.add(x) }
        }
        #expect(!p.isSmall, "\(path)")
        #expect(p.moments.missing == 1 && p.moments.nonFinite == 1, "\(path)")
        #expect((p.distinctCount == nil) == (distinct > NumericProfile.distinctTableLimit), "\(path)")
        Self.expectSummarises(p, data, path)
        let restored = try NumericProfile(serialized: p.serialized())
        #expect(restored.serialized() == p.serialized() && restored.isSmall == p.isSmall, "\(path)")
    }

    /// A replica restarted from its checkpoint continues exactly like one that never stopped.
    @Test(arguments: [60, 300])
    func aDecodedProfileContinuesLikeTheOriginal(distinct: Int) throws {
        let data = Self.values(900, distinct: distinct, offset: 0.5)
        var live = NumericProfile()
        var restarted = NumericProfile()
        for (step, start) in stride(from: 0, to: data.count, by: 100).enumerated() {
            let part = data[start..<(start + 100)]
            live.add(contentsOf: part)
            restarted.add(contentsOf: part)
            restarted = try NumericProfile(serialized: restarted.serialized())
            // Bytes, not `==`: a KLL's free space keeps stale items after a compaction, which `==`
            // sees and the encoding (like every query) does not.
            #expect(restarted.serialized() == live.serialized(), "after batch \(step)")
            #expect(restarted.isSmall == live.isSmall, "after batch \(step)")
        }
        #expect(!live.isSmall)
    }

    @Test(arguments: [
        ("small and small, still small", 100, 100, 30, 30),
        ("small and small, past the count", 400, 400, 30, 30),
        ("small and small, past the distinct values", 100, 100, 100, 100),
        ("small and large", 100, 5_000, 30, 1_000),
        ("large and small", 5_000, 100, 1_000, 30),
        ("deferred digests, past k", 300, 300, 300, 300),
        ("deferred digests, still within k", 150, 150, 150, 150),
        ("large and a deferred digest", 5_000, 300, 1_000, 300),
        ("a deferred digest and large", 300, 5_000, 300, 1_000),
    ])
    func mergesKeepEveryValue(path: String, n1: Int, n2: Int, d1: Int, d2: Int) throws {
        let a = Self.values(n1, distinct: d1)
        let b = Self.values(n2, distinct: d2, offset: 0.25)
        var left = NumericProfile(), right = NumericProfile()
        left.add(contentsOf: a)
        right.add(contentsOf: b)
        var merged = left
        merged.merge(right)
        let all = a + b
        let small =
            all.count <= Int(NumericProfile.deferredSketchLimit)
            && Set(all).count <= NumericProfile.distinctTableLimit
        #expect(merged.isSmall == small, "\(path)")
        Self.expectSummarises(merged, all, path)
        let restored = try NumericProfile(serialized: merged.serialized())
        #expect(restored.serialized() == merged.serialized() && restored.isSmall == merged.isSmall, "\(path)")
    }

    /// A merge with a sketch of another k can compact below this profile's k: the digest stops
    /// being deferred there (it could no longer be rebuilt from a one-level KLL).
    @Test func mergingAnotherKEndsTheDeferral() throws {
        var wide = NumericProfile(k: 1_000)
        wide.add(contentsOf: Self.values(50, distinct: 50, offset: 0.5))
        var compacted = NumericProfile()
        let theirs = Self.values(450, distinct: 450)
        compacted.add(contentsOf: theirs)
        #expect(compacted.kll.numLevels > 1)
        wide.merge(compacted)
        #expect(!wide.digestDeferred && wide.tdigest.count == 500)
        #expect(wide.sketch.count == 500 && wide.digest.count == 500)
        let restored = try NumericProfile(serialized: wide.serialized())
        #expect(restored.serialized() == wide.serialized())
    }
}
