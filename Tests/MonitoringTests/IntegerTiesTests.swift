import Foundation
import Testing

@testable import Monitoring

/// Integer columns with 6 to ~80 distinct, heavily tied values (counts such as rooms, items or
/// occupants): drift measures from profiles (the current side merged from windows) against SciPy's
/// exact `wasserstein_distance / np.std(reference)` and `ks_2samp` statistic
/// (Tests/MonitoringTests/Fixtures/wasserstein_integer_ties.json, from
/// scripts/fixtures/make_wasserstein_fixtures.py).
@Suite struct IntegerTiesTests {
    let cases: [[String: Any]]
    init() throws { cases = try loadJSON("wasserstein_integer_ties.json")["cases"] as! [[String: Any]] }

    /// Draws a fixture sample and checks it is the one SciPy saw.
    func sample(_ c: [String: Any], _ side: String) -> [Double] {
        let values = HeavyTailSpec(c[side] as! [String: Any]).values()
        let check = c["\(side)_check"] as! [String: Any]
        #expect(Array(values.prefix(3)) == check["first"] as! [Double], "\(c["name"]!) \(side)")
        #expect(values.reduce(0, +) == check["sum"] as! Double, "\(c["name"]!) \(side)")
        return values
    }

    /// The reference profile in one piece and the current one merged from `current_windows` windows.
    func profiles(_ c: [String: Any]) -> (reference: NumericProfile, current: NumericProfile, raw: [[Double]]) {
        let refValues = sample(c, "reference"), curValues = sample(c, "current")
        var reference = NumericProfile()
        reference.add(contentsOf: refValues)
        let current = mergedProfile(curValues, windows: c["current_windows"] as! Int)
        return (reference, current, [refValues, curValues])
    }

    func drift(_ name: String, _ r: NumericProfile, _ c: NumericProfile, _ method: DriftMethod) -> ColumnDrift {
        ColumnDrift.compute(
            reference: ColumnProfile(name: name, content: .numeric(r)),
            current: ColumnProfile(name: name, content: .numeric(c)), method: method)
    }

    @Test func wassersteinMatchesScipyOnTiedIntegers() throws {
        for c in cases {
            let name = c["name"] as! String
            let (reference, current, _) = profiles(c)
            let result = drift(name, reference, current, .wasserstein)
            let exact = c["normalized"] as! Double
            let estimate = try #require(result.wasserstein)
            let distinct = c["distinct"] as! [Int]
            print(
                "integer ties \(name) (\(distinct[2]) distinct): SciPy \(String(format: "%.4f", exact)) profile "
                    + "\(String(format: "%.4f", estimate)) error \(String(format: "%.1e", estimate - exact))")
            #expect(abs(estimate - exact) <= 0.005, "\(name): profile \(estimate), SciPy \(exact)")
            // With both tables the computation is exact; only rounding separates it from SciPy.
            #expect(reference.distinctCount != nil && current.distinctCount != nil, "\(name)")
            #expect(abs(estimate - exact) <= 1e-12, "\(name): profile \(estimate), SciPy \(exact)")
            if abs(exact - 0.1) > 0.005 { #expect(result.drift == (exact >= 0.1), "\(name)") }
        }
    }

    @Test func ksMatchesScipyOnTiedIntegers() throws {
        for c in cases {
            let name = c["name"] as! String
            let (reference, current, _) = profiles(c)
            let ks = try #require(drift(name, reference, current, .ks).ks)
            let exact = c["ks"] as! Double
            #expect(abs(ks - exact) <= 1e-12, "\(name): profile \(ks), SciPy \(exact)")
        }
    }

    /// PSI from the profiles equals PSI from the raw samples' exact distributions (same bins).
    @Test func psiIsExactOnTiedIntegers() throws {
        for c in cases {
            let name = c["name"] as! String
            let (reference, current, raw) = profiles(c)
            let psi = try #require(drift(name, reference, current, .psi).psi)
            let rd = EmpiricalDistribution(samples: raw[0]), cd = EmpiricalDistribution(samples: raw[1])
            let edges = DriftMeasures.quantileEdges(rd, bins: 10)
            let exact = DriftMeasures.psi(
                reference: DriftMeasures.binShares(rd, edges: edges), current: DriftMeasures.binShares(cd, edges: edges)
            )
            #expect(isClose(psi, exact, abs: 1e-12, rel: 1e-9), "\(name): profile \(psi), samples \(exact)")
        }
    }
}
