import Foundation
import Testing

@testable import Monitoring

@Suite struct ProfileTests {
    /// The batch path sorts each batch once and hands the sketches ascending runs, so its KLL
    /// keeps other items than value-by-value adds would (a different coin sequence over other
    /// buffers): the same summary within the sketch's error bound, not the same bytes.
    @Test func numericBatchSummarisesLikeSingleAdds() {
        var data = Inputs.normal.values(20_000)
        data[5] = .nan
        data[6] = .infinity
        var a = NumericProfile(), b = NumericProfile()
        for x in data { a.add(x) }
        for start in stride(from: 0, to: data.count, by: 1_000) { b.add(contentsOf: data[start..<(start + 1_000)]) }
        let sorted = data.filter { $0.isFinite }.sorted()
        #expect(b.sketch.count == a.sketch.count && b.sketch.min == a.sketch.min && b.sketch.max == a.sketch.max)
        #expect(maxRankError(a.sketch, sorted: sorted) <= 0.01)
        #expect(maxRankError(b.sketch, sorted: sorted) <= 0.01)
        #expect(b.digest.count == a.digest.count && b.digest.min == a.digest.min && b.digest.max == a.digest.max)
        #expect(a.moments.count == 19_998 && b.moments.count == 19_998)
        #expect(b.moments.missing == 1 && b.moments.nonFinite == 1)
        #expect(isClose(a.moments.mean, b.moments.mean, abs: 1e-12))
        #expect(isClose(a.moments.variance, b.moments.variance, rel: 1e-10))
        let finite = data.filter { $0.isFinite }
        let mean = finite.reduce(0, +) / Double(finite.count)
        let variance = finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(finite.count)
        #expect(isClose(b.moments.mean, mean, abs: 1e-12))
        #expect(isClose(b.moments.variance, variance, rel: 1e-10))
    }

    @Test func numericMergeEqualsWhole() throws {
        let data = Inputs.pareto.values(60_000)
        var whole = NumericProfile()
        whole.add(contentsOf: data)
        var merged = NumericProfile()
        for i in 0..<3 {
            var p = NumericProfile()
            p.add(contentsOf: data[(i * 20_000)..<((i + 1) * 20_000)])
            merged.merge(p)
        }
        #expect(merged.moments.count == whole.moments.count)
        #expect(merged.moments.min == whole.moments.min && merged.moments.max == whole.moments.max)
        #expect(isClose(merged.moments.mean, whole.moments.mean, rel: 1e-12))
        #expect(isClose(merged.moments.m2, whole.moments.m2, rel: 1e-9))
        #expect(maxRankError(merged.sketch, sorted: data.sorted()) <= 0.01)
        let restored = try NumericProfile(serialized: merged.serialized())
        #expect(restored == merged)
    }

    @Test func smallDistinctTableIsExactThenDropped() throws {
        var p = NumericProfile()
        p.add(contentsOf: [1, 0, 1, 1, 0, .nan])
        let table = try #require(p.distinctValueCounts)
        #expect(table.map(\.value) == [0, 1] && table.map(\.count) == [2, 3])
        let restored = try NumericProfile(serialized: p.serialized())
        #expect(restored.distinctValueCounts?.map(\.count) == [2, 3])
        p.add(contentsOf: [2, 3, 4, 5])
        #expect(p.distinctValueCounts?.map(\.value) == [0, 1, 2, 3, 4, 5])
        p.add(contentsOf: (0...NumericProfile.distinctTableLimit).map { Double($0) + 0.5 })
        #expect(p.distinctValueCounts == nil)
    }

    @Test func numericCorruptInputThrows() {
        var p = NumericProfile()
        p.add(contentsOf: Inputs.uniform.values(5_000))
        let bytes = p.serialized()
        for cut in stride(from: 0, to: bytes.count, by: 97) {
            #expect(throws: ProfileDecodingError.self) { try NumericProfile(serialized: bytes.prefix(cut)) }
        }
        var mismatched = bytes
        mismatched[5] ^= 0x02  // moments.count no longer equals the sketch count
        #expect(throws: ProfileDecodingError.self) { try NumericProfile(serialized: mismatched) }
    }

    @Test func frequentItemsExactWhenFewDistinct() {
        var f = FrequentItems()
        for i in 0..<50_000 { f.add("v\(i % 1_000)") }
        #expect(f.maximumError == 0)
        #expect(f.count(of: "v7") == 50)
        #expect(f.items.count == 1_000)
    }

    @Test func frequentItemsErrorBoundOnSkewedStream() {
        // Zipf-like: item i has weight ∝ 1/(i+1), 20,000 distinct items.
        var r = TestRandom(seed: 5)
        var truth: [String: UInt64] = [:]
        var parts = [FrequentItems(), FrequentItems()]
        let n = 400_000
        for j in 0..<n {
            let u = r.uniform()
            let item = "c\(Int(Foundation.pow(20_000, u)) - 1)"
            truth[item, default: 0] += 1
            parts[j % 2].add(item)
        }
        var merged = parts[0]
        merged.merge(parts[1])
        for f in [parts[0], merged] {
            #expect(f.maximumError > 0)
            #expect(Double(f.maximumError) <= 2 * Double(f.total) / Double(f.capacity + 1))
            #expect(f.retainedCount <= f.capacity)
        }
        for (item, c) in truth { #expect(merged.bounds(of: item).contains(c), "\(item)") }
        // The heaviest items are retained.
        #expect(merged.count(of: "c0") > 0 && merged.count(of: "c1") > 0)
    }

    @Test func hyperLogLogAccuracyAndMerge() {
        var a = HyperLogLog(), b = HyperLogLog(), both = HyperLogLog()
        for i in 0..<100_000 {
            let s = "user-\(i)"
            if i % 2 == 0 { a.add(s) } else { b.add(s) }
            both.add(s)
        }
        #expect(abs(both.estimate / 100_000 - 1) < 0.05)  // 3σ at 1.6 %
        a.merge(b)
        #expect(a == both)
        var small = HyperLogLog()
        for s in ["a", "b", "c", "a", "d"] { small.add(s) }
        #expect(small.estimate.rounded() == 4)
    }

    @Test func categoricalRoundTripMergeAndUnseen() throws {
        var ref = CategoricalProfile(), cur = CategoricalProfile()
        for s in ["red", "green", "red", "blue"] { ref.add(s) }
        ref.addMissing()
        for s in ["red", "purple", "purple", "green", "cyan"] { cur.add(s) }
        #expect(cur.unseenCount(against: ref) == 3)
        #expect(ref.count == 4 && ref.total == 5)
        let restored = try CategoricalProfile(serialized: ref.serialized())
        #expect(restored == ref)
        var merged = ref
        merged.merge(cur)
        #expect(merged.frequent.count(of: "red") == 3)
        #expect(merged.distinct.estimate.rounded() == 5)
        let bytes = merged.serialized()
        for cut in 0..<bytes.count {
            #expect(throws: ProfileDecodingError.self) { try CategoricalProfile(serialized: bytes.prefix(cut)) }
        }
        // Dense HyperLogLog form (many distinct values) also round-trips.
        var big = CategoricalProfile()
        for i in 0..<20_000 { big.add("k\(i)") }
        #expect(try CategoricalProfile(serialized: big.serialized()) == big)
    }
}
