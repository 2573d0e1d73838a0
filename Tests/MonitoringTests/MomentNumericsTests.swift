import Foundation
import Testing

@testable import Monitoring

/// Moments of finite values computed in double-double arithmetic (≈ 106-bit significands) on values
/// scaled by an exact power of two, so huge and tiny inputs are as accurate as ordinary ones.
struct ReferenceMoments {
    var count: Int
    /// The values were multiplied by 2^-power before summing.
    var power: Int
    var mean: Double
    /// M2 / 4^power.
    var scaledM2: Double

    init(_ values: [Double]) {
        let finite = values.filter(\.isFinite)
        count = finite.count
        let magnitude = finite.map(\.magnitude).max() ?? 0
        power = magnitude == 0 ? 0 : Int(magnitude.exponent) + 1
        let p = power
        let scaledValues = finite.map { Double(sign: .plus, exponent: -p, significand: $0) }
        var sum = DoubleDouble(0)
        for x in scaledValues.sorted(by: { $0.magnitude < $1.magnitude }) { sum = sum + DoubleDouble(x) }
        let m = sum / Double(Swift.max(count, 1))
        var m2 = DoubleDouble(0)
        for x in scaledValues {
            let d = DoubleDouble(x) - m
            m2 = m2 + d * d
        }
        mean = Double(sign: .plus, exponent: p, significand: m.value)
        scaledM2 = m2.value
    }

    /// Population standard deviation.
    var standardDeviation: Double {
        Double(sign: .plus, exponent: power, significand: (scaledM2 / Double(count)).squareRoot())
    }
    var variance: Double { Double(sign: .plus, exponent: 2 * power, significand: scaledM2 / Double(count)) }

    /// Checks `stats` against the reference: M2 (compared in a common unit, so also when it exceeds
    /// the Double range) and the standard deviation within `rel`, the mean within `rel` times the
    /// larger of |mean| and the standard deviation (its rounding error scales with the spread).
    func check(_ stats: MomentStats, rel: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(stats.count == UInt64(count), sourceLocation: sourceLocation)
        #expect(stats.mean.isFinite && stats.scaledM2.isFinite, "\(stats)", sourceLocation: sourceLocation)
        let meanTolerance = rel * Swift.max(mean.magnitude, standardDeviation)
        #expect(
            (stats.mean - mean).magnitude <= meanTolerance, "mean \(stats.mean) vs \(mean)",
            sourceLocation: sourceLocation)
        let m2 = Double(sign: .plus, exponent: 2 * (stats.scale - power), significand: stats.scaledM2)
        #expect(
            isRelClose(m2, scaledM2, rel: rel), "M2/4^\(power) \(m2) vs \(scaledM2)", sourceLocation: sourceLocation)
        #expect(isRelClose(stats.standardDeviation, standardDeviation, rel: rel), sourceLocation: sourceLocation)
        if variance.isFinite {
            #expect(isRelClose(stats.variance, variance, rel: rel), sourceLocation: sourceLocation)
        } else {
            #expect(stats.variance == .infinity, sourceLocation: sourceLocation)
        }
    }
}

/// |a - b| ≤ rel × max(|a|, |b|), with no absolute floor (figures here range over 600 decades).
func isRelClose(_ a: Double, _ b: Double, rel: Double) -> Bool {
    a == b || (a - b).magnitude <= rel * Swift.max(a.magnitude, b.magnitude)
}

/// An unevaluated sum hi + lo with |lo| ≤ ulp(hi) / 2 (Dekker; Knuth's TwoSum).
struct DoubleDouble {
    var hi: Double
    var lo: Double
    init(_ x: Double) {
        hi = x
        lo = 0
    }
    init(hi: Double, lo: Double) {
        self.hi = hi
        self.lo = lo
    }
    var value: Double { hi + lo }

    static func twoSum(_ a: Double, _ b: Double) -> DoubleDouble {
        let s = a + b
        let bb = s - a
        return DoubleDouble(hi: s, lo: (a - (s - bb)) + (b - bb))
    }
    static func + (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble {
        let s = twoSum(a.hi, b.hi)
        return twoSum(s.hi, s.lo + a.lo + b.lo)
    }
    static prefix func - (a: DoubleDouble) -> DoubleDouble { DoubleDouble(hi: -a.hi, lo: -a.lo) }
    static func - (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble { a + -b }
    static func * (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble {
        let p = a.hi * b.hi
        let e = (-p).addingProduct(a.hi, b.hi) + a.hi * b.lo + a.lo * b.hi
        return twoSum(p, e)
    }
    static func / (a: DoubleDouble, n: Double) -> DoubleDouble {
        let q1 = a.hi / n
        let r = a - DoubleDouble(hi: q1 * n, lo: (-(q1 * n)).addingProduct(q1, n))
        return twoSum(q1, r.value / n)
    }
}

/// The three ways stats are built: one value at a time, in batches, and by merging parts.
enum MomentPath: String, CaseIterable, CustomTestStringConvertible {
    case single, batch, merged
    var testDescription: String { rawValue }

    func stats(_ values: [Double]) -> MomentStats {
        var s = MomentStats()
        switch self {
        case .single:
            for x in values { s.add(x) }
        case .batch:
            values.withUnsafeBufferPointer { s.add(contentsOf: $0) }
        case .merged:
            // Uneven parts, some built one value at a time, some in batches.
            var start = 0, i = 0
            while start < values.count {
                let end = Swift.min(values.count, start + 1 + (i * 37) % 301)
                var part = MomentStats()
                if i % 2 == 0 {
                    for x in values[start..<end] { part.add(x) }
                } else {
                    Array(values[start..<end]).withUnsafeBufferPointer { part.add(contentsOf: $0) }
                }
                s.merge(part)
                start = end
                i += 1
            }
        }
        return s
    }
}

@Suite struct MomentNumericsTests {
    @Test(arguments: MomentPath.allCases)
    func twoLargestValuesKeepTheirMean(path: MomentPath) {
        let s = path.stats([1e308, 1e308])
        #expect(s.mean == 1e308)
        #expect(s.variance == 0 && s.sampleVariance == 0 && s.standardDeviation == 0)
        let t = path.stats([
            -Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude, -Double.greatestFiniteMagnitude,
        ])
        #expect(t.mean == -Double.greatestFiniteMagnitude)
        #expect(t.variance == 0)
    }

    @Test(arguments: MomentPath.allCases, [1e200, -1e200, 1.2345678901234567e250, 3e-300, 7.25])
    func constantSeriesHasZeroVariance(path: MomentPath, value: Double) {
        let s = path.stats(Array(repeating: value, count: 1000))
        #expect(s.mean == value)
        #expect(s.variance == 0 && s.sampleVariance == 0 && s.m2 == 0 && s.standardDeviation == 0)
    }

    @Test(arguments: MomentPath.allCases)
    func mixedExtremesStayFinite(path: MomentPath) {
        var values = (0..<1000).map { $0 % 2 == 0 ? 1e308 : -1e308 }
        var r = TestRandom(seed: 7)
        values += (0..<500).map { _ in (r.uniform() * 2 - 1) * Double.greatestFiniteMagnitude }
        values += [1, -3.5, 1e-300, 0]
        let s = path.stats(values)
        let reference = ReferenceMoments(values)
        reference.check(s, rel: 1e-12)
        // The variance (≈ 1e616) is beyond the Double range and says so; the deviation is not.
        #expect(s.variance == .infinity)
        #expect(s.standardDeviation.isFinite && s.standardDeviation > 9e307)

        let balanced = path.stats((0..<1000).map { $0 % 2 == 0 ? 1e308 : -1e308 })
        #expect(balanced.mean.magnitude <= 1e308 * 1e-15)
        #expect(isRelClose(balanced.standardDeviation, 1e308, rel: 1e-15))
    }

    /// Parts spanning very different magnitudes (so different scales) merge in any order to the
    /// figures of one pass over all values.
    @Test func mergesAcrossScalesAgreeWithOnePass() {
        var r = TestRandom(seed: 11)
        let parts: [[Double]] = [
            (0..<300).map { _ in r.normal() * 3 + 10 },
            (0..<200).map { _ in r.normal() * 1e199 + 1e200 },
            (0..<100).map { _ in (r.uniform() * 2 - 1) * 1e308 },
            Array(repeating: 1e200, count: 50),
            (0..<100).map { _ in r.normal() * 1e-300 },
            (0..<80).map { _ in r.normal() * 1e140 - 5e140 },
        ]
        let all = parts.flatMap { $0 }
        var onePass = MomentStats()
        for x in all { onePass.add(x) }
        let reference = ReferenceMoments(all)
        reference.check(onePass, rel: 1e-12)
        let stats = parts.map { MomentPath.batch.stats($0) }
        #expect(Set(stats.map(\.scale)).count >= 4, "parts should have different scales: \(stats.map(\.scale))")
        var orders = [Array(stats.indices), Array(stats.indices.reversed()), [2, 0, 4, 1, 5, 3], [4, 0, 3, 5, 1, 2]]
        var g = TestRandom(seed: 3)
        for _ in 0..<8 {
            var order = Array(stats.indices)
            for i in order.indices.reversed() { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
            orders.append(order)
        }
        for order in orders {
            var merged = MomentStats()
            for i in order { merged.merge(stats[i]) }
            reference.check(merged, rel: 1e-12)
            #expect(isRelClose(merged.mean, onePass.mean, rel: 1e-12), "order \(order)")
            #expect(isRelClose(merged.standardDeviation, onePass.standardDeviation, rel: 1e-12), "order \(order)")
            #expect(merged.min == onePass.min && merged.max == onePass.max && merged.count == onePass.count)
        }
        // A tree of merges, as shards and windows combine.
        let left = {
            var a = stats[0]
            a.merge(stats[1])
            a.merge(stats[2])
            return a
        }()
        var right = stats[3]
        right.merge(stats[4])
        right.merge(stats[5])
        var tree = right
        tree.merge(left)
        reference.check(tree, rel: 1e-12)
    }

    @Test(arguments: MomentPath.allCases)
    func poisonedBatchDoesNotStick(path: MomentPath) {
        var r = TestRandom(seed: 5)
        let poison: [Double] = [1e308, 1e308, .nan, .infinity, -.infinity, 1e200, 1e200]
        let batches = (0..<5).map { _ in (0..<2000).map { _ in r.normal() * 3 + 10 } }
        var profile = NumericProfile()
        var stats = MomentStats()
        for batch in [poison] + batches {
            profile.add(contentsOf: batch)
            stats.merge(path.stats(batch))
        }
        let all = poison + batches.flatMap { $0 }
        let reference = ReferenceMoments(all)
        for s in [profile.moments, stats] {
            reference.check(s, rel: 1e-12)
            #expect(s.missing == 1 && s.nonFinite == 2)
        }
        // The finite huge values leave once the windows that held them are dropped.
        var later = MomentStats()
        for batch in batches { later.merge(path.stats(batch)) }
        ReferenceMoments(batches.flatMap { $0 }).check(later, rel: 1e-12)
    }

    /// Ordinary data: as accurate as before the scaling (and the same figures while no scaling applies).
    @Test(arguments: Inputs.allCases, MomentPath.allCases)
    func ordinaryDataMatchesHighPrecisionReference(inputs: Inputs, path: MomentPath) {
        for seed in UInt64(1)...5 {
            let values = inputs.values(5000 + Int(seed) * 777, seed: seed)
            let s = path.stats(values)
            ReferenceMoments(values).check(s, rel: 1e-12)
            #expect(s.scale == 0)
        }
    }

    /// The same data multiplied by huge and tiny powers of two keeps its relative accuracy, and its
    /// figures are the unscaled ones times the power (scaling by 2^k is exact).
    @Test(arguments: [900, 600, 449, -600, -900, -1000], MomentPath.allCases)
    func scaledDataIsAsAccurate(power: Int, path: MomentPath) {
        var r = TestRandom(seed: UInt64(power.magnitude))
        let base = (0..<7000).map { _ in r.normal() * 3 + 10 }
        let values = base.map { Double(sign: .plus, exponent: power, significand: $0) }
        let s = path.stats(values)
        ReferenceMoments(values).check(s, rel: 1e-12)
        let plain = path.stats(base)
        #expect(isRelClose(s.mean, Double(sign: .plus, exponent: power, significand: plain.mean), rel: 1e-13))
        #expect(
            isRelClose(
                s.standardDeviation, Double(sign: .plus, exponent: power, significand: plain.standardDeviation),
                rel: 1e-12))
    }

    @Test func profilesWithoutDigestStillReadAsVersionOneOrTwo() throws {
        var ordinary = NumericProfile()
        ordinary.add(contentsOf: Inputs.normal.values(1000))
        #expect(ordinary.serialized()[4] == 3)
        #expect(ordinary.serializedWithoutDigest()[4] == 1)

        var huge = NumericProfile()
        huge.add(contentsOf: [1e308, -1e308, 3e307, 1e200, 5])
        let bytes = huge.serialized()
        #expect(bytes[4] == 3)
        let restored = try NumericProfile(serialized: bytes)
        #expect(restored.moments == huge.moments)
        #expect(restored.serialized() == bytes)
        let legacy = huge.serializedWithoutDigest()
        #expect(legacy[4] == 2)
        #expect(try NumericProfile(serialized: legacy).moments == huge.moments)
    }

    /// Version 1 stored plain M2; a profile of values past 2^448 whose M2 still fit reads back the same.
    @Test func versionOneWithLargeValuesStillReads() throws {
        var p = NumericProfile()
        p.add(contentsOf: [1e140, 2e140, 3e140, 2.5e140])
        let m = p.moments
        #expect(m.scale > 0)
        var bytes = p.serializedWithoutDigest()
        #expect(bytes[4] == 2)
        bytes[4] = 1
        let plainM2 = m.m2
        #expect(plainM2.isFinite)
        let m2Offset = 5 + 3 * 8 + 3 * 8
        withUnsafeBytes(of: plainM2.bitPattern.littleEndian) {
            bytes.replaceSubrange(m2Offset..<m2Offset + 8, with: $0)
        }
        let restored = try NumericProfile(serialized: bytes)
        #expect(restored.moments.count == 4 && restored.moments.mean == m.mean)
        #expect(isRelClose(restored.moments.variance, m.variance, rel: 1e-15))
        #expect(isRelClose(restored.moments.scaledM2, m.scaledM2, rel: 1e-15))

        bytes[4] = NumericProfile.versions.upperBound + 1
        #expect { try NumericProfile(serialized: bytes) } throws: {
            ($0 as? ProfileDecodingError)?.code == .unsupportedVersion
        }
    }

    @Test func nonFiniteValuesAreCountedNotAveraged() {
        var s = MomentStats()
        for x in [Double.nan, .infinity, -.infinity, .nan, 2, 4] { s.add(x) }
        #expect(s.count == 2 && s.missing == 2 && s.nonFinite == 2 && s.total == 6)
        #expect(s.mean == 3 && s.variance == 1)
    }

    @Test func sampleStandardDeviationStaysFiniteWhereTheVarianceCannot() {
        var s = MomentStats()
        for x in [1e308, -1e308, 1e308, -1e308] { s.add(x) }
        #expect(s.sampleVariance == .infinity)
        // M2 = 4e616 over n - 1 = 3: std = 1e308 * sqrt(4 / 3).
        let expected = 1e308 * (4.0 / 3.0).squareRoot()
        #expect(abs(s.sampleStandardDeviation - expected) / expected < 1e-12)
        var small = MomentStats()
        for x in [1.0, 2.0, 3.0, 4.0] { small.add(x) }
        #expect(abs(small.sampleStandardDeviation - small.sampleVariance.squareRoot()) < 1e-15)
    }
}
