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

    @Flag(help: "Only the ingest-shaped comparison (windows against the all-time profile).")
    var ingestOnly = false

    func run() throws {
        compareIngestPaths()
        if ingestOnly { return }
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

    /// The per-value work of the ingest benchmark's batches (`InfranautBench ingest --segments 3
    /// --event-times`): 1,000-row batches of 20 numeric features and 3 text columns of 5 values,
    /// 60 of them, through a spec's windows (whole model + 3 segment columns) and, for scale,
    /// through the all-time profile every model keeps (one `NumericProfile` per feature).
    private func compareIngestPaths() {
        var rng = LCG()
        let rows = 1_000, features = 20, batches = 60
        let texts = ["a", "b", "c", "d", "e"]
        let data: [WindowBatch] = (0..<batches).map { b in
            var columns = (0..<features).map { f in
                WindowColumn.numbers("f\(f)", (0..<rows).map { _ in rng.next() * Double(f + 1) })
            }
            for s in 0..<3 {
                columns.append(.strings("s\(s)", (0..<rows).map { _ in texts[Int(rng.next() * 5)] }))
            }
            return WindowBatch(
                rowCount: rows, eventTimesMs: (0..<rows).map { Int64(b * 1_000 + $0 % 1_000) }, versions: .batch("v1"),
                columns: columns)
        }
        let values = data.count * rows * features
        var sink = 0
        let allTime = medianSeconds(runs: 7) {
            var profiles = [NumericProfile](repeating: NumericProfile(), count: features)
            for batch in data {
                for f in 0..<features {
                    if case .numbers(let v) = batch.columns[f].values {
                        v.withUnsafeBufferPointer { profiles[f].add(contentsOf: $0) }
                    }
                }
            }
            sink &+= Int(profiles[0].moments.count)
        }
        let settings = WindowSettings(sizeMs: 3_600_000, latenessMs: 0, segmentColumns: ["s0", "s1", "s2"])
        let windows = medianSeconds(runs: 7) {
            var m = ModelWindows(settings: settings)
            for (b, batch) in data.enumerated() { _ = try? m.add(batch, processingTimeMs: Int64(b * 1_000)) }
            sink &+= m.openWindowCount
        }
        print(
            "ingest shape, \(batches) x \(rows) rows x \(features) numeric features: all-time profiles "
                + "\(fmt(allTime * 1e9 / Double(values), 1)) ns per value; windows (whole + 3 segment columns) "
                + "\(fmt(windows * 1e9 / Double(values), 1)) ns per value, \(fmt(windows / allTime, 2)) x (checksum \(sink))"
        )
    }
}

/// The median wall time of `runs` calls of `body`, in seconds.
func medianSeconds(runs: Int, _ body: () -> Void) -> Double {
    median(
        (0..<runs).map { _ in
            let t0 = now()
            body()
            return now() - t0
        })
}
