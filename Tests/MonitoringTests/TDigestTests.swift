import Testing

@testable import Monitoring

@Suite struct TDigestTests {
    /// Normalised Wasserstein distance between a digest and the exact sample it summarises.
    func error(_ d: TDigest, _ values: [Double]) -> Double {
        let exact = EmpiricalDistribution(samples: values)
        var m = MomentStats()
        for x in values { m.add(x) }
        return DriftMeasures.wasserstein(d.quantileCurve, QuantileCurve(exact)) / m.standardDeviation
    }

    /// Continuous inputs only: on few distinct values with heavy ties centroids mix neighbouring
    /// values and the error reaches a few hundredths (docs/drift.md).
    @Test(arguments: [Inputs.uniform, .normal, .pareto])
    func closeToTheSampleAndBoundedAtAnyCount(_ input: Inputs) throws {
        let values = input.values(1_000_000, seed: 7)
        var whole = TDigest(), merged = TDigest()
        whole.add(contentsOf: values)
        for start in stride(from: 0, to: values.count, by: 10_000) {
            var window = TDigest()
            window.add(contentsOf: values[start..<start + 10_000])
            merged.merge(window)
        }
        for d in [whole, merged] {
            #expect(d.count == 1_000_000 && d.min == values.min() && d.max == values.max())
            #expect(error(d, values) <= 0.003, "\(input)")
            #expect(d.centroidCount <= TDigest.defaultCompression)
            #expect(d.memoryFootprint <= 8 * 1024)
            print(
                "digest \(input): centroids \(d.centroidCount), \(d.memoryFootprint) bytes, serialized \(d.serialized().count)"
            )
        }
    }

    @Test func singleValuesAreExactSteps() {
        var d = TDigest()
        d.add(contentsOf: [3, 1, 2, 2])
        #expect(d.quantileCurve.values == [1, 1, 1, 2, 2, 2, 2, 3, 3, 3])
        let exact = QuantileCurve(EmpiricalDistribution(samples: [1, 2, 2, 3]))
        #expect(DriftMeasures.wasserstein(d.quantileCurve, exact) == 0)
    }

    @Test func roundTripKeepsTheBufferAndRejectsCorruption() throws {
        var d = TDigest()
        d.add(contentsOf: Inputs.pareto.values(10_100))
        #expect(!d.buffer.isEmpty)
        let bytes = d.serialized()
        let restored = try TDigest(serialized: bytes)
        #expect(restored == d)
        #expect(try TDigest(serialized: TDigest().serialized()) == TDigest())
        for cut in stride(from: 0, to: bytes.count, by: 53) {
            #expect(throws: ProfileDecodingError.self) { try TDigest(serialized: bytes.prefix(cut)) }
        }
        var wrongCount = bytes
        wrongCount[7] ^= 0x01
        #expect(throws: ProfileDecodingError.self) { try TDigest(serialized: wrongCount) }
    }

    @Test func legacyProfilesGetADigestFromTheSketch() throws {
        var p = NumericProfile()
        p.add(contentsOf: Inputs.normal.values(20_000))
        let legacy = try NumericProfile(serialized: p.serializedWithoutDigest())
        #expect(legacy.digest.count == p.digest.count)
        #expect(legacy.moments == p.moments)
        #expect(error(legacy.digest, Inputs.normal.values(20_000)) <= 0.02)
    }

    /// The flush's radix sort orders every kind of finite value as `<` does (signs, subnormals,
    /// extremes, ties; `-0.0` before `0.0`), for sizes around the buffer's.
    @Test func radixSortOrdersFiniteValues() {
        var r = TestRandom(seed: 5)
        let special: [Double] = [
            0, -0.0, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, .leastNormalMagnitude, 1, -1, 1e-300, -1e300,
        ]
        for n in [0, 1, 2, 3, 17, 255, 256, 1000] {
            var values = (0..<n).map { i -> Double in
                switch r.next() % 4 {
                case 0: return special[Int(r.next() % UInt64(special.count))]
                case 1: return Double(Int(r.next() % 7) - 3)
                case 2: return (r.uniform() - 0.5) * 1e6
                default: return r.normal() * (Double.leastNormalMagnitude / 64) + Double(i % 2)
                }
            }
            let expected = values.sorted()
            values.withUnsafeMutableBufferPointer { radixSortFinite($0) }
            #expect(values == expected, "n = \(n)")
            #expect(
                zip(values, values.dropFirst()).allSatisfy {
                    !($0.sign == .plus && $0 == 0 && $1.sign == .minus && $1 == 0)
                })
        }
    }

    /// A flush (one pass merging the sorted buffer into the centroids while compressing) gives
    /// the centroids of the plain construction: merge both sorted lists, then ``TDigest/compress``.
    @Test func flushMatchesMergeThenCompress() {
        let values = Inputs.pareto.values(5_000) + Inputs.discrete.values(3_000)
        var d = TDigest()
        var reference: [TDigest.Centroid] = []
        for start in stride(from: 0, to: values.count, by: TDigest.bufferCapacity) {
            let chunk = values[start..<Swift.min(start + TDigest.bufferCapacity, values.count)]
            d.add(contentsOf: chunk)
            var merged: [TDigest.Centroid] = []
            var i = 0
            for x in chunk.sorted() {
                while i < reference.count && reference[i].mean <= x {
                    merged.append(reference[i])
                    i += 1
                }
                merged.append(TDigest.Centroid(x))
            }
            merged += reference[i...]
            reference = TDigest.compress(merged, compression: d.compression)
        }
        d.flush()
        #expect(d.centroids == reference)
    }
}
