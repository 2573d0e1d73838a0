import Foundation
import Testing

@testable import Monitoring

/// One generated sample of the heavy-tail or integer-ties fixture; `values()` is mirrored by `draw` in
/// scripts/fixtures/make_wasserstein_fixtures.py.
struct HeavyTailSpec {
    var kind: String
    var params: [Double]
    var n: Int
    var seed: UInt64

    init(_ json: [String: Any]) {
        kind = json["kind"] as! String
        params = (json["params"] as! [NSNumber]).map(\.doubleValue)
        n = json["n"] as! Int
        seed = (json["seed"] as! NSNumber).uint64Value
    }

    func values() -> [Double] {
        var r = TestRandom(seed: seed)
        let p = params
        return (0..<n).map { _ in
            switch kind {
            case "normal": return p[0] + p[1] * r.normal()
            case "lognormal": return Foundation.exp(p[0] + p[1] * r.normal())
            case "pareto": return p[1] * Foundation.pow(1 - r.uniform(), -1 / p[0])
            case "outliers":
                let x = p[0] + p[1] * r.normal()
                let u = r.uniform(), v = r.uniform()
                return u < p[2] ? x * (p[3] + (p[4] - p[3]) * v) : x
            case "uniform_int": return p[0] + Foundation.floor(r.uniform() * (p[1] - p[0] + 1))
            case "poisson": return Double(r.poisson(p[0])) + p[1]
            case "geometric":
                return Foundation.floor(Foundation.log(1 - r.uniform()) / Foundation.log(1 - p[0])) + p[1]
            default: preconditionFailure("unknown generator \(kind)")
            }
        }
    }
}

/// The normalised Wasserstein distance computed from profiles (sketches, merged windows) against
/// SciPy's exact `wasserstein_distance / np.std(reference)` on heavy-tailed data, where the tails
/// carry most of the distance (scripts/fixtures/make_wasserstein_fixtures.py).
@Suite struct WassersteinHeavyTailTests {
    let cases: [[String: Any]]
    init() throws { cases = try loadJSON("wasserstein_heavy_tail.json")["cases"] as! [[String: Any]] }

    /// Draws a fixture sample and checks it is the one SciPy saw.
    func sample(_ c: [String: Any], _ side: String) throws -> [Double] {
        let values = HeavyTailSpec(c[side] as! [String: Any]).values()
        let check = c["\(side)_check"] as! [String: Any]
        let first = check["first"] as! [Double]
        #expect(zip(values, first).allSatisfy { isClose($0, $1, abs: 0, rel: 1e-12) }, "\(c["name"]!) \(side)")
        let sum = values.sorted { abs($0) < abs($1) }.reduce(0, +)
        #expect(isClose(sum, check["sum"] as! Double, abs: 0, rel: 1e-9), "\(c["name"]!) \(side)")
        return values
    }

    @Test func sketchWassersteinMatchesScipyOnHeavyTails() throws {
        for c in cases {
            let name = c["name"] as! String
            let refValues = try sample(c, "reference"), curValues = try sample(c, "current")
            var reference = NumericProfile()
            reference.add(contentsOf: refValues)
            // The current profile is merged from windows, as the monitor builds it.
            let current = mergedProfile(curValues, windows: c["current_windows"] as! Int)
            let result = ColumnDrift.compute(
                reference: ColumnProfile(name: name, content: .numeric(reference)),
                current: ColumnProfile(name: name, content: .numeric(current)), method: .wasserstein)
            let exact = c["normalized"] as! Double
            let estimate = try #require(result.wasserstein)
            print(
                "wasserstein \(name): exact \(exact.short) sketch \(estimate.short) error \((estimate - exact).short)")
            #expect(abs(estimate - exact) <= 0.01, "\(name): sketch \(estimate), SciPy \(exact)")
            if abs(exact - 0.1) > 0.01 { #expect(result.drift == (exact >= 0.1), "\(name)") }
        }
    }
}

/// The profile of `values` merged from `windows` profiles of consecutive slices, as the monitor
/// builds a current profile from its windows.
func mergedProfile(_ values: [Double], windows: Int) -> NumericProfile {
    var merged = NumericProfile()
    let size = (values.count + windows - 1) / windows
    for start in stride(from: 0, to: values.count, by: size) {
        var window = NumericProfile()
        window.add(contentsOf: values[start..<Swift.min(start + size, values.count)])
        merged.merge(window)
    }
    return merged
}

extension TestRandom {
    /// Knuth's multiplication method, as `poisson` in the fixture script.
    mutating func poisson(_ lambda: Double) -> Int {
        let limit = Foundation.exp(-lambda)
        var k = 0
        var p = uniform()
        while p > limit {
            k += 1
            p *= uniform()
        }
        return k
    }
}

extension Double {
    fileprivate var short: String { String(format: "%.4f", self) }
}
