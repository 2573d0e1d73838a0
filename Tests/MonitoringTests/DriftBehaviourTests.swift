import Foundation
import Testing

@testable import Monitoring

@Suite struct DriftBehaviourTests {
    func numeric(_ name: String, _ values: [Double]) -> ColumnProfile {
        var b = ColumnProfileBuilder(name: name)
        for v in values { b.add(number: v) }
        return b.build()
    }

    @Test(arguments: [(Inputs.normal, 0.0), (Inputs.normal, 0.05), (Inputs.pareto, 0.0), (Inputs.uniform, 2.0)])
    func sketchKSWithinOneHundredthOfExactAt50kRows(input: Inputs, shift: Double) {
        let ref = input.values(50_000, seed: 1)
        let cur = input.values(50_000, seed: 2).map { $0 + shift }
        let exact = DriftMeasures.kolmogorovSmirnov(
            EmpiricalDistribution(samples: ref), EmpiricalDistribution(samples: cur))
        let result = ColumnDrift.compute(reference: numeric("x", ref), current: numeric("x", cur))
        let ks = result.ks ?? .nan
        #expect(abs(ks - exact) <= 0.01, "sketch \(ks) exact \(exact)")
        let exactW = DriftMeasures.wasserstein(EmpiricalDistribution(samples: ref), EmpiricalDistribution(samples: cur))
        var m = MomentStats()
        for x in ref { m.add(x) }
        // Wasserstein from sketches: within 1 % of the reference spread plus 5 % relative.
        #expect(
            abs((result.wasserstein ?? .nan) - exactW / m.standardDeviation) <= 0.01 + 0.05 * exactW
                / m.standardDeviation)
    }

    @Test func autoUsesWassersteinForLargeNumericAndDecidesByThreshold() {
        let ref = Inputs.normal.values(20_000, seed: 1)  // std 3
        let same = ColumnDrift.compute(
            reference: numeric("x", ref), current: numeric("x", Inputs.normal.values(20_000, seed: 2)))
        #expect(same.method == .wasserstein && same.threshold == 0.1)
        #expect(same.drift == false)
        #expect((same.score ?? 1) < 0.05)
        let shifted = ref.map { $0 + 1.5 }  // half a standard deviation
        let moved = ColumnDrift.compute(reference: numeric("x", ref), current: numeric("x", shifted))
        #expect(moved.drift)
        #expect(abs((moved.score ?? 0) - 0.5) < 0.02)
        #expect((moved.ks ?? 0) > 0.15 && (moved.ksPValue ?? 1) < 1e-10)
    }

    @Test func autoTreatsLowCardinalityNumericAsCategorical() {
        let ref = (0..<6_000).map { Double($0 % 3) }
        let cur = (0..<6_000).map { Double($0 % 2) }
        let result = ColumnDrift.compute(reference: numeric("c", ref), current: numeric("c", cur))
        #expect(result.type == .numeric)
        #expect(result.method == .js)
        // Shares (1/3, 1/3, 1/3) vs (1/2, 1/2, 0).
        let expected = DriftMeasures.jensenShannon([1, 1, 1], [1, 1, 0])
        #expect(isClose(result.js ?? 0, expected, rel: 1e-9))
        #expect(result.drift)
        let small = ColumnDrift.compute(
            reference: numeric("c", Array(ref.prefix(300))), current: numeric("c", Array(cur.prefix(300))))
        #expect(small.method == .chi2 && small.drift)
    }

    @Test func explicitMethodsAndCategoricalFallback() {
        var r = CategoricalProfile(), c = CategoricalProfile()
        for i in 0..<3_000 { r.add(i % 4 == 0 ? "a" : "b") }
        for i in 0..<3_000 { c.add(i % 2 == 0 ? "a" : "b") }
        let rp = ColumnProfile(name: "k", content: .categorical(r)),
            cp = ColumnProfile(name: "k", content: .categorical(c))
        let auto = ColumnDrift.compute(reference: rp, current: cp)
        #expect(auto.method == .js && auto.drift)
        let ks = ColumnDrift.compute(reference: rp, current: cp, method: .ks)
        #expect(ks.method == .js && ks.note != nil)
        let psi = ColumnDrift.compute(reference: rp, current: cp, method: .psi)
        // (0.5-0.25)ln(2) + (0.5-0.75)ln(2/3)
        #expect(psi.method == .psi && isClose(psi.score ?? 0, 0.25 * log(2.0) - 0.25 * log(2.0 / 3.0), rel: 1e-9))
        #expect(psi.drift)
    }

    @Test func builderInfersTypesAndReportSummarizes() {
        var refA = ColumnProfileBuilder(name: "a"), curA = ColumnProfileBuilder(name: "a")
        var refB = ColumnProfileBuilder(name: "b"), curB = ColumnProfileBuilder(name: "b")
        var refC = ColumnProfileBuilder(name: "only_ref")
        let x = Inputs.normal.values(3_000, seed: 9)
        for (i, v) in x.enumerated() {
            refA.add(number: v)
            curA.add(number: v + 3)
            refB.add(number: Double(i % 3))
            if i == 10 { curB.add(string: "n/a") } else { curB.add(number: Double(i % 3)) }
            refC.addMissing()
        }
        let curExtra = ColumnProfileBuilder(name: "only_cur")
        let refs = [refA.build(), refB.build(), refC.build()]
        let curs = [curA.build(), curB.build(), curExtra.build()]
        #expect(curs[1].type == .categorical)
        #expect(curs[1].asCategorical.frequent.count(of: "2") == 1_000)
        #expect(curs[1].asCategorical.frequent.count(of: "n/a") == 1)
        let report = DriftReport.compute(reference: refs, current: curs)
        #expect(report.columns.map(\.name) == ["a", "b"])
        #expect(report.onlyInReference == ["only_ref"] && report.onlyInCurrent == ["only_cur"])
        #expect(report.columns[0].drift && report.columns[0].method == .wasserstein)
        #expect(report.columns[1].type == .categorical && !report.columns[1].drift)
        #expect(report.columns[1].unseenShare.map { isClose($0, 1.0 / 3_000) } == true)
        #expect(report.driftedCount == 1 && report.driftShare == 0.5 && report.datasetDrift)
    }

    @Test func emptySidesReportNoScore() {
        var b = ColumnProfileBuilder(name: "e")
        b.addMissing()
        let result = ColumnDrift.compute(reference: b.build(), current: numeric("e", [1, 2, 3]))
        #expect(result.score == nil && !result.drift && result.note == "no values in the reference")
    }

    @Test func declaredNumericCountsTypeMismatches() {
        var b = ColumnProfileBuilder(name: "n", type: .numeric)
        b.add(number: 1)
        b.add(string: "oops")
        b.add(bool: true)
        let p = b.build()
        #expect(p.type == .numeric && p.typeMismatches == 1 && p.count == 2 && p.missing == 1)
    }
}
