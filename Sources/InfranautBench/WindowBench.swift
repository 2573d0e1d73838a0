import ArgumentParser
import Monitoring

/// Release-mode benchmark of the per-window evaluation (issue 11): a model with 100 numeric
/// features and one segment column of 3 values, evaluated against an uploaded reference at close.
struct WindowBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows", abstract: "Window evaluation and window ingest speed.")

    @Option(help: "Rows in the window (spread evenly over the 3 segment values).")
    var rows = 30_000

    @Option(help: "Rows in the uploaded reference.")
    var referenceRows = 50_000

    func run() throws {
        let features = 100
        var rng = LCG()
        let segments = ["a", "b", "c"]
        func batch(_ n: Int, shift: Double) -> WindowBatch {
            var columns = (0..<features).map { f in
                WindowColumn.numbers("f\(f)", (0..<n).map { _ in rng.next() + (f % 10 == 0 ? shift : 0) })
            }
            columns.append(.strings("segment", (0..<n).map { segments[$0 % 3] }))
            return WindowBatch(
                rowCount: n, eventTimesMs: (0..<n).map { Int64($0) * 3_600_000 / Int64(n) }, versions: .batch("v1"),
                columns: columns, prediction: .numbers("score", (0..<n).map { _ in rng.next() }))
        }
        let settings = WindowSettings(sizeMs: 3_600_000, latenessMs: 0, segmentColumns: ["segment"])
        var referenceWindows = ModelWindows(settings: settings)
        _ = try referenceWindows.add(batch(referenceRows, shift: 0), processingTimeMs: 0)
        let whole = referenceWindows.openWindows().first { $0.window.key.segment == nil }!.window
        let reference = ReferenceProfile(
            columns: whole.columns, prediction: whole.prediction, rows: whole.rows, spanMs: 3_600_000)

        let current = batch(rows, shift: 0.2)
        var closed: [EvaluableWindow] = []
        measure(
            "ModelWindows.add, \(rows) rows x \(features) features, 3 segments", only: nil, runs: 5,
            unit: "feature values", perRun: Double(rows * features)
        ) {
            var m = ModelWindows(settings: settings)
            m.setUploadedReference(reference, version: "v1")
            _ = try? m.add(current, processingTimeMs: 0)
            closed = m.tick(processingTimeMs: 7_200_000).closed
        }
        let config = MonitorConfig(ignoredColumns: ["segment"])
        var drifting = 0
        measure(
            "WindowResult.evaluate, whole model + 3 segment windows x \(features) features", only: nil, runs: 21,
            unit: "windows", perRun: Double(closed.count)
        ) {
            for w in closed {
                drifting += WindowResult.evaluate(w.window, reference: w.reference, config: config).driftedCount
            }
        }
        measure(
            "WindowResult.evaluate, one window x \(features) features", only: nil, runs: 21, unit: "windows", perRun: 1
        ) {
            drifting +=
                WindowResult.evaluate(closed[0].window, reference: closed[0].reference, config: config).driftedCount
        }
        let sample = WindowResult.evaluate(closed[0].window, reference: closed[0].reference, config: config)
        print(
            "windows \(closed.count); whole-model window: \(sample.driftedCount) of \(sample.features.count) drift (checksum \(drifting))"
        )
    }
}
