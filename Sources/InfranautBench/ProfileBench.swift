import ArgumentParser
import Monitoring

#if canImport(Glibc)
    import Glibc
#endif

/// Release-mode micro benchmarks of the Monitoring target; prints the median of several runs.
struct ProfileBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Profile updates and drift evaluation speed.")

    @Argument(help: "Only run benchmarks whose name contains this text.")
    var only: String?

    func run() {
        let only = self.only
        var rng = LCG()

        let n = 10_000_000
        let values = (0..<n).map { _ in rng.next() * 100 - 50 }
        var sink = 0.0

        measure("NumericProfile.add(_:) x 10M", only: only, unit: "values", perRun: Double(n)) {
            var p = NumericProfile()
            for x in values { p.add(x) }
            sink += p.sketch.quantile(0.5)
        }
        measure("NumericProfile.add(contentsOf:) x 10M", only: only, unit: "values", perRun: Double(n)) {
            var p = NumericProfile()
            values.withUnsafeBufferPointer { p.add(contentsOf: $0) }
            sink += p.sketch.quantile(0.5)
        }
        measure("QuantileSketch.add(_:) x 10M", only: only, unit: "values", perRun: Double(n)) {
            var s = QuantileSketch()
            for x in values { s.add(x) }
            sink += s.quantile(0.5)
        }
        measure("MomentStats.add(_:) x 10M", only: only, unit: "values", perRun: Double(n)) {
            var s = MomentStats()
            for x in values { s.add(x) }
            sink += s.mean
        }

        // Drift evaluation of 100 numeric features between two profiles (profiles built beforehand).
        var refProfiles: [ColumnProfile] = [], curProfiles: [ColumnProfile] = []
        for f in 0..<100 {
            var r = NumericProfile(), c = NumericProfile()
            let shift = Double(f % 5) * 0.05
            for _ in 0..<100_000 {
                r.add(rng.next())
                c.add(rng.next() + shift)
            }
            refProfiles.append(ColumnProfile(name: "f\(f)", content: .numeric(r)))
            curProfiles.append(ColumnProfile(name: "f\(f)", content: .numeric(c)))
        }
        measure(
            "DriftReport.compute, 100 numeric features (100k rows each side)", only: only, runs: only == nil ? 9 : 200,
            unit: "features", perRun: 100
        ) {
            let report = DriftReport.compute(reference: refProfiles, current: curProfiles)
            sink += report.driftShare
        }

        // The statistics part of `infranaut drift` on two 500,000-row x 8-column inputs: 6 numeric
        // columns and 2 categorical columns fed cell by cell through ColumnProfileBuilder.
        let rows = 500_000
        let words = (0..<40).map { "category-\($0)" }
        let cells: [Double] = (0..<(rows * 6)).map { _ in rng.next() * 10 }
        let labels: [Int] = (0..<(rows * 2)).map { _ in Int(rng.next() * 40) }
        measure(
            "ColumnProfileBuilder + DriftReport, 2 x 500k rows x 8 cols (6 numeric, 2 categorical)", only: only,
            runs: 5, unit: "cells", perRun: Double(2 * rows * 8)
        ) {
            var profiles: [[ColumnProfile]] = []
            for side in 0..<2 {
                var builders = (0..<8).map { ColumnProfileBuilder(name: "c\($0)") }
                for row in 0..<rows {
                    for col in 0..<6 { builders[col].add(number: cells[row * 6 + col] + Double(side) * 0.1) }
                    builders[6].add(string: words[labels[row * 2]])
                    builders[7].add(string: words[(labels[row * 2 + 1] + side) % 40])
                }
                profiles.append(builders.map { $0.build() })
            }
            let report = DriftReport.compute(reference: profiles[0], current: profiles[1])
            sink += report.driftShare
        }
        print("checksum \(sink)")
        measure("distribution x 200", only: only, runs: 9, unit: "sketches", perRun: 200) {
            for p in refProfiles + curProfiles {
                if case .numeric(let n) = p.content { sink += n.sketch.distribution.totalWeight }
            }
        }

    }
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func fmt(_ x: Double, _ digits: Int = 3) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    return "\((x * p).rounded() / p)"
}

func measure(_ name: String, only: String?, runs: Int = 7, unit: String, perRun: Double, _ body: () -> Void) {
    if let only, !name.contains(only) { return }
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = now()
        body()
        times.append(now() - t0)
    }
    let m = median(times)
    let rate =
        perRun >= 10_000
        ? "\(fmt(perRun / m / 1e6, 1)) M \(unit)/s" : "\(fmt(m / perRun * 1e6, 1)) µs per \(unit.dropLast())"
    print("\(name): median \(fmt(m * 1000)) ms over \(runs) runs; \(rate)")
}

struct LCG {
    var state: UInt64 = 12345
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) * 0x1.0p-53
    }
}
