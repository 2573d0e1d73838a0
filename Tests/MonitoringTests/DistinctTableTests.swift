import Testing

@testable import Monitoring

/// The exact table of distinct values in ``NumericProfile``: merges are unions, the table is
/// dropped exactly past ``NumericProfile/distinctTableLimit`` values and for good, and it
/// survives serialization in a form older builds still read where it can.
@Suite struct DistinctTableTests {
    let limit = NumericProfile.distinctTableLimit

    /// The exact counts of `values`' finite values, or `nil` past the limit.
    func expectedTable(_ values: [Double]) -> [(value: Double, count: UInt64)]? {
        var counts: [Double: UInt64] = [:]
        for x in values where x.isFinite { counts[x, default: 0] += 1 }
        guard counts.count <= limit else { return nil }
        return counts.sorted { $0.key < $1.key }.map { (value: $0.key, count: $0.value) }
    }

    func same(_ a: [(value: Double, count: UInt64)]?, _ b: [(value: Double, count: UInt64)]?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (let a?, let b?): return a.map(\.value) == b.map(\.value) && a.map(\.count) == b.map(\.count)
        default: return false
        }
    }

    /// Integer-like data with `distinct` possible values starting at `offset`, some NaN and ±inf.
    func sample(_ r: inout TestRandom, n: Int, distinct: Int, offset: Int) -> [Double] {
        (0..<n).map { _ in
            switch r.next() % 50 {
            case 0: return .nan
            case 1: return .infinity
            default: return Double(offset + Int(r.next() % UInt64(distinct))) * 0.5
            }
        }
    }

    @Test func mergeIsTheTableOfTheConcatenatedData() {
        var r = TestRandom(seed: 11)
        var seen = (kept: 0, dropped: 0)
        for trial in 0..<300 {
            // Up to 200 possible values on each side, overlapping or not: unions on both sides of the limit.
            let a = sample(
                &r, n: Int(r.next() % 800), distinct: 1 + Int(r.next() % 200), offset: Int(r.next() % 200) - 100)
            let b = sample(
                &r, n: Int(r.next() % 800), distinct: 1 + Int(r.next() % 200), offset: Int(r.next() % 200) - 100)
            var pa = NumericProfile(), pb = NumericProfile()
            // Both ingestion paths: one value at a time and batches.
            if trial % 2 == 0 { a.forEach { pa.add($0) } } else { pa.add(contentsOf: a) }
            pb.add(contentsOf: b)
            #expect(same(pa.distinctValueCounts, expectedTable(a)), "trial \(trial) a")
            var merged = pa
            merged.merge(pb)
            let expected = expectedTable(a + b)
            #expect(same(merged.distinctValueCounts, expected), "trial \(trial)")
            #expect(merged.distinctCount == expected?.count)
            var reversed = pb
            reversed.merge(pa)
            #expect(same(reversed.distinctValueCounts, expected), "trial \(trial) reversed")
            if expected == nil { seen.dropped += 1 } else { seen.kept += 1 }
        }
        // The generator exercises both outcomes.
        #expect(seen.kept > 30 && seen.dropped > 30, "\(seen)")
    }

    @Test(arguments: [false, true]) func tableIsDroppedExactlyPastTheLimitAndForGood(batch: Bool) {
        func add(_ p: inout NumericProfile, _ xs: [Double]) {
            if batch { p.add(contentsOf: xs) } else { xs.forEach { p.add($0) } }
        }
        var p = NumericProfile()
        add(&p, (0..<limit).reversed().map(Double.init))
        add(&p, [0, 5, .nan, -.infinity, -0.0])
        #expect(p.distinctCount == limit)
        #expect(p.distinctValueCounts?.first?.count == 3)  // 0, 0 and -0.0 are one value
        add(&p, [Double(limit)])
        #expect(p.distinctValueCounts == nil)
        add(&p, [1, 2, 3])
        #expect(p.distinctValueCounts == nil)

        // A merge that reaches the limit keeps the table; one past it drops it.
        var low = NumericProfile(), high = NumericProfile()
        add(&low, (0..<(limit / 2)).map(Double.init))
        add(&high, ((limit / 2)..<limit).map(Double.init))
        var union = low
        union.merge(high)
        #expect(union.distinctCount == limit)
        var extra = NumericProfile()
        add(&extra, [-1])
        union.merge(extra)
        #expect(union.distinctValueCounts == nil)
        // Merging a profile without a table drops the table too.
        var kept = low
        kept.merge(p)
        #expect(kept.distinctValueCounts == nil)
    }

    @Test func serializationKeepsTheTableAndOlderVersionsRead() throws {
        var wide = NumericProfile()
        wide.add(contentsOf: (0..<1000).map { Double($0 % 100) })
        let bytes = wide.serialized()
        #expect(bytes[4] == 4)
        let restored = try NumericProfile(serialized: bytes)
        #expect(restored.serialized() == bytes)
        #expect(same(restored.distinctValueCounts, wide.distinctValueCounts) && restored.distinctCount == 100)

        // Five values or none: version 3 bytes, which builds before the wider table read.
        var narrow = NumericProfile()
        narrow.add(contentsOf: [3, 1, 2, 1, 5])
        #expect(narrow.serialized()[4] == 3)
        #expect(try NumericProfile(serialized: narrow.serialized()).distinctValueCounts?.map(\.count) == [2, 1, 1, 1])
        var continuous = NumericProfile()
        continuous.add(contentsOf: Inputs.normal.values(1000))
        #expect(continuous.serialized()[4] == 3)
        #expect(try NumericProfile(serialized: continuous.serialized()).distinctValueCounts == nil)

        // The layout before the digest cannot hold 100 values: it says "more than 5", which reads
        // as a dropped table.
        let legacy = try NumericProfile(serialized: wide.serializedWithoutDigest())
        #expect(legacy.distinctValueCounts == nil)
        #expect(try NumericProfile(serialized: narrow.serializedWithoutDigest()).distinctCount == 4)
    }

    @Test func versionFourRejectsUnsortedOrRepeatedValues() throws {
        var p = NumericProfile()
        p.add(contentsOf: (0..<20).map(Double.init))
        let bytes = p.serialized()
        // Header: magic (4), version (1), moments (7 × 8), table size (1); then 20 × (f64, 1-byte varint).
        let first = 4 + 1 + 56 + 1
        #expect(bytes[first - 1] == 20)
        var swapped = bytes
        swapped.replaceSubrange(first..<(first + 9), with: bytes[(first + 9)..<(first + 18)])
        swapped.replaceSubrange((first + 9)..<(first + 18), with: bytes[first..<(first + 9)])
        #expect(throws: ProfileDecodingError.self) { try NumericProfile(serialized: swapped) }
        var repeated = bytes
        repeated.replaceSubrange((first + 9)..<(first + 17), with: bytes[first..<(first + 8)])
        #expect(throws: ProfileDecodingError.self) { try NumericProfile(serialized: repeated) }
    }
}
