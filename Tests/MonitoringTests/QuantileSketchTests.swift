import Foundation
import Testing

@testable import Monitoring

@Suite struct QuantileSketchTests {
    @Test(arguments: Inputs.allCases)
    func rankErrorWithinOnePercent(input: Inputs) {
        let data = input.values(300_000)
        var sketch = QuantileSketch()
        for x in data { sketch.add(x) }
        let sorted = data.sorted()
        #expect(sketch.count == 300_000)
        #expect(sketch.min == sorted.first && sketch.max == sorted.last)
        #expect(sketch.retainedCount < 2_000)
        #expect(maxRankError(sketch, sorted: sorted) <= 0.01)
        // Quantiles: the true rank of the returned value brackets q within 1 %.
        for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
            let v = sketch.quantile(q)
            let below = Double(sorted.firstIndex { $0 >= v } ?? sorted.count) / 300_000
            let atOrBelow = Double(upperBound(sorted, v)) / 300_000
            #expect(below - 0.01 <= q && q <= atOrBelow + 0.01, "q=\(q) v=\(v)")
        }
    }

    @Test(arguments: Inputs.allCases)
    func mergeOfPartsMatchesWholeWithinBound(input: Inputs) {
        let data = input.values(200_000, seed: 7)
        var merged = QuantileSketch()
        for part in 0..<8 {
            var s = QuantileSketch()
            s.add(contentsOf: data[(part * 25_000)..<((part + 1) * 25_000)])
            merged.merge(s)
        }
        #expect(merged.count == 200_000)
        #expect(merged.retainedCount <= QuantileSketch.totalCapacity(k: merged.k, numLevels: merged.numLevels))
        #expect(maxRankError(merged, sorted: data.sorted()) <= 0.01)
    }

    @Test func exactUpToK() {
        let data = Inputs.normal.values(400)
        var s = QuantileSketch()
        s.add(contentsOf: data)
        let sorted = data.sorted()
        #expect(s.numLevels == 1)
        #expect(maxRankError(s, sorted: sorted) == 0)
        #expect(s.quantile(0.5) == sorted[199])
    }

    @Test func memoryStaysUnder16KiB() {
        var s = QuantileSketch()
        var r = TestRandom(seed: 3)
        for _ in 0..<2_000_000 { s.add(r.uniform()) }
        #expect(s.memoryFootprint <= 16 * 1024)
        #expect(s.serialized().count <= 16 * 1024)
        let bound = 2.296 / pow(Double(QuantileSketch.defaultK), 0.9723)
        #expect(bound < 0.01)
    }

    @Test func replicasWithSameOpsAreIdentical() {
        let data = Inputs.pareto.values(50_000)
        var a = QuantileSketch(), b = QuantileSketch()
        for x in data { a.add(x) }
        b.add(contentsOf: data)  // batch path must make exactly the same choices
        #expect(a == b)
        var other = QuantileSketch()
        other.add(contentsOf: Inputs.normal.values(30_000))
        a.merge(other)
        b.merge(other)
        #expect(a == b)
        #expect(a.serialized() == b.serialized())
        var c = QuantileSketch(seed: 99)
        c.add(contentsOf: data)
        #expect(c.count == 50_000)
    }

    @Test func ignoresNonFinite() {
        var s = QuantileSketch()
        s.add(.nan)
        s.add(.infinity)
        s.add(contentsOf: [1, .nan, 2, -.infinity])
        #expect(s.count == 2)
        #expect(s.quantile(1) == 2)
    }

    @Test func serializationRoundTripsAndKeepsBehaviour() throws {
        var s = QuantileSketch()
        s.add(contentsOf: Inputs.uniform.values(123_456))
        let bytes = s.serialized()
        var restored = try QuantileSketch(serialized: bytes)
        #expect(restored.count == s.count)
        #expect(restored.distribution == s.distribution)
        // Continuing after restore makes the same choices as the original.
        let more = Inputs.normal.values(10_000)
        s.add(contentsOf: more)
        restored.add(contentsOf: more)
        #expect(restored.serialized() == s.serialized())
        let empty = try QuantileSketch(serialized: QuantileSketch().serialized())
        #expect(empty.isEmpty)
    }

    @Test func corruptBytesThrowTypedErrors() {
        var s = QuantileSketch()
        s.add(contentsOf: Inputs.normal.values(2_000))
        let bytes = s.serialized()
        for cut in [0, 3, 5, 20, 40, bytes.count - 1] {
            #expect(throws: ProfileDecodingError.self) { try QuantileSketch(serialized: bytes.prefix(cut)) }
        }
        var badMagic = bytes
        badMagic[0] = UInt8(ascii: "X")
        #expect { try QuantileSketch(serialized: badMagic) } throws: {
            ($0 as? ProfileDecodingError)?.code == .badMagic
        }
        var badVersion = bytes
        badVersion[4] = 9
        #expect { try QuantileSketch(serialized: badVersion) } throws: {
            ($0 as? ProfileDecodingError)?.code == .unsupportedVersion
        }
        var badCount = bytes
        badCount[8] ^= 0x01  // low byte of count
        #expect { try QuantileSketch(serialized: badCount) } throws: {
            ($0 as? ProfileDecodingError)?.code == .invalidValue
        }
        #expect { try QuantileSketch(serialized: bytes + [0]) } throws: {
            ($0 as? ProfileDecodingError)?.code == .trailingBytes
        }
        // Random corruption never traps: it either throws or decodes to a valid sketch.
        var r = TestRandom(seed: 11)
        for _ in 0..<300 {
            var b = bytes
            b[Int(r.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: r.next())
            if let decoded = try? QuantileSketch(serialized: b) { _ = decoded.quantile(0.5) }
        }
    }
}

@Suite struct SortTests {
    @Test(arguments: [0, 1, 2, 23, 24, 25, 100, 1_000, 5_000])
    func sortDoublesMatchesStandardSort(count: Int) {
        var r = TestRandom(seed: UInt64(count) + 1)
        for pattern in 0..<4 {
            var values: [Double] = (0..<count).map { i in
                switch pattern {
                case 0: return r.normal()
                case 1: return Double(r.next() % 5)  // many duplicates
                case 2: return Double(i)  // already sorted
                default: return Double(count - i)  // reversed
                }
            }
            let expected = values.sorted()
            values.withUnsafeMutableBufferPointer { sortDoubles($0) }
            #expect(values == expected, "pattern \(pattern)")
        }
    }

    /// Inputs for the sorts the sketches use: random, with duplicates, made of a few ascending runs
    /// (what the sketches receive), more runs than are merged, negative and mixed signs, and values
    /// packed so close that their high bytes tie (the radix sort's insertion pass gives up on them).
    static func patterns(_ count: Int, seed: UInt64) -> [(String, [Double])] {
        var r = TestRandom(seed: seed)
        func runs(_ k: Int) -> [Double] {
            let size = Swift.max(1, count / k)
            var out: [Double] = []
            while out.count < count {
                let run = (0..<Swift.min(size, count - out.count)).map { _ in r.normal() }.sorted()
                out += run
            }
            return out
        }
        return [
            ("normal", (0..<count).map { _ in r.normal() }),
            ("duplicates", (0..<count).map { _ in Double(r.next() % 5) - 2 }),
            ("3 runs", runs(3)),
            ("16 runs", runs(16)),
            ("40 runs", runs(40)),
            ("negative", (0..<count).map { _ in -abs(r.normal()) * 1e6 }),
            ("packed", (0..<count).map { _ in 1.0e9 + Double(r.next() % 1_000_000) * 1e-6 }),
            (
                "extremes",
                (0..<count).map { i in
                    i % 7 == 0
                        ? -Double.greatestFiniteMagnitude : (i % 5 == 0 ? Double.greatestFiniteMagnitude : r.normal())
                }
            ),
        ]
    }

    @Test(arguments: [0, 1, 2, 50, 95, 96, 257, 1_000, 5_000])
    func runSortMatchesStandardSort(count: Int) {
        for (name, input) in Self.patterns(count, seed: UInt64(count) + 7) {
            var values = input
            values.withUnsafeMutableBufferPointer { sortFiniteRuns($0) }
            #expect(values == input.sorted(), "\(name)")
        }
    }

    @Test(arguments: [2, 96, 1_000, 5_000])
    func radixSortCarriesItsPayload(count: Int) {
        for (name, input) in Self.patterns(count, seed: UInt64(count) + 11) {
            var values = input
            var positions = (0..<Int32(count)).map { $0 }
            values.withUnsafeMutableBufferPointer { v in
                positions.withUnsafeMutableBufferPointer { radixSortFinite(v, carrying: $0) }
            }
            #expect(values == input.sorted(), "\(name)")
            #expect(Set(positions).count == count, "\(name): a permutation")
            #expect(zip(values, positions).allSatisfy { $0 == input[Int($1)] }, "\(name): payload follows its value")
        }
    }
}
