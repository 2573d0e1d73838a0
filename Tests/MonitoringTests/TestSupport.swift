import Foundation
import Testing

@testable import Monitoring

/// Deterministic generator for test data (independent of the library's internal generator).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        var x = state
        x ^= x >> 33
        x &*= 0xff51afd7ed558ccd
        x ^= x >> 33
        return x
    }
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    mutating func normal() -> Double {
        let u1 = Swift.max(uniform(), 1e-300), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
    /// Pareto with x_m = 1 and shape 1.5 (infinite variance, heavy tail).
    mutating func pareto() -> Double { Foundation.pow(1 - uniform(), -1 / 1.5) }
}

enum Inputs: String, CaseIterable, CustomTestStringConvertible {
    case uniform, normal, pareto, discrete, constant
    var testDescription: String { rawValue }

    func values(_ n: Int, seed: UInt64 = 42) -> [Double] {
        var r = TestRandom(seed: seed)
        return (0..<n).map { _ in
            switch self {
            case .uniform: return r.uniform() * 100
            case .normal: return r.normal() * 3 + 10
            case .pareto: return r.pareto()
            case .discrete: return Double(r.next() % 10)
            case .constant: return 7.25
            }
        }
    }
}

/// Max over probe points of |estimated rank − true rank| for data `sorted`.
func maxRankError(_ sketch: QuantileSketch, sorted: [Double]) -> Double {
    let n = Double(sorted.count)
    var probes = Set<Double>()
    for i in stride(from: 0, to: sorted.count, by: Swift.max(1, sorted.count / 400)) { probes.insert(sorted[i]) }
    probes.insert(sorted.last!)
    let dist = sketch.distribution
    var worst = 0.0
    for x in probes {
        let trueRank = Double(upperBound(sorted, x)) / n
        worst = Swift.max(worst, abs(dist.cdf(x) - trueRank))
    }
    return worst
}

/// Number of elements `<= x` in ascending `sorted`.
func upperBound(_ sorted: [Double], _ x: Double) -> Int {
    var lo = 0, hi = sorted.count
    while lo < hi {
        let mid = (lo + hi) / 2
        if sorted[mid] <= x { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

func fixtureURL(_ name: String) throws -> URL {
    try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
}

func loadJSON(_ name: String) throws -> [String: Any] {
    let data = try Data(contentsOf: try fixtureURL(name))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func isClose(_ a: Double, _ b: Double, abs tolerance: Double = 1e-9, rel: Double = 1e-9) -> Bool {
    if a == b { return true }
    return Swift.abs(a - b) <= Swift.max(tolerance, rel * Swift.max(Swift.abs(a), Swift.abs(b)))
}

extension NumericProfile {
    /// The layout builds before the digest wrote (version 1 or 2).
    func serializedWithoutDigest() -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        encode(into: &w, digest: false)
        return w.bytes
    }
}
