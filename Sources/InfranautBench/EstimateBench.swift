import ArgumentParser
import Monitoring

/// The cost of estimating one window's performance (issue 12's target: under 5 ms): fitting the
/// calibration on a labelled reference of `--reference-rows` scores and estimating a window of
/// `--rows` scores, as `WindowResult.evaluate` does for every window of a binary classifier.
struct EstimateBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate", abstract: "Time to estimate one window's performance (CBPE) from its scores.")

    @Option(help: "Labelled reference rows.")
    var referenceRows = 20_000

    @Option(help: "Rows in the window.")
    var rows = 2_000

    @Option(help: "Windows estimated (each timed).")
    var windows = 2_000

    func run() async throws {
        var random = SplitMix64(seed: 12)
        var reference = ScoreHistogram()
        for _ in 0..<referenceRows {
            let s = Double.random(in: 0..<1, using: &random)
            reference.add(score: s, positive: Double.random(in: 0..<1, using: &random) < s * s)
        }
        var scores = PredictionScores(threshold: 0.5)
        for _ in 0..<rows { scores.add(score: Double.random(in: 0..<1, using: &random).squareRoot()) }
        var samples: [Duration] = []
        var checksum = 0.0
        let clock = ContinuousClock()
        for _ in 0..<windows {
            let started = clock.now
            let estimator = PerformanceEstimator(reference: reference, threshold: 0.5)!
            checksum += estimator.estimate(scores).reduce(0) { $0 + $1.value }
            samples.append(clock.now - started)
        }
        samples.sort()
        func ms(_ d: Duration) -> String {
            let (s, a) = d.components
            return String(format: "%.3f ms", Double(s) * 1000 + Double(a) / 1e15)
        }
        print(
            "estimate: \(windows) windows of \(rows) rows, reference \(referenceRows) rows: median \(ms(samples[samples.count / 2])), p99 \(ms(samples[samples.count * 99 / 100])), max \(ms(samples.last!)) (checksum \(checksum))"
        )
    }
}
