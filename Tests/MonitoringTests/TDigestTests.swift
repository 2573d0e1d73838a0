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
}
