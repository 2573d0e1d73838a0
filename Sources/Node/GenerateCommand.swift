import ArgumentParser
import Foundation
import Monitoring

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic telemetry CSV (for demos, benchmarks and drills).",
        discussion: """
            Columns: id, ts (Unix ms), f0..fN-1 (normal features), segment (categorical), score and
            label. --shift moves the mean of every other feature by that many standard deviations and
            skews the categories, to produce drift.
            """
    )

    @Option(help: "Rows to write.")
    var rows = 10_000

    @Option(help: "Numeric features.")
    var features = 8

    @Option(help: "Mean shift (in standard deviations) applied to every other feature.")
    var shift = 0.0

    @Option(help: "Share of feature values left empty (missing).")
    var missing = 0.01

    @Option(help: "Random seed.")
    var seed: UInt64 = 42

    @Option(help: "Output path (.csv).")
    var out: String

    @Flag(help: "Print a summary of what was written as JSON.")
    var json = false

    struct Summary: Encodable {
        var path: String
        var rows: Int
        var columns: [String]
        var shift: Double
        var seed: UInt64
    }

    func validate() throws {
        guard rows > 0 else { throw ValidationError("--rows must be positive") }
        guard (1...1_000).contains(features) else { throw ValidationError("--features must be between 1 and 1000") }
        guard (0...1).contains(missing) else { throw ValidationError("--missing is a share between 0 and 1") }
    }

    func run() async throws {
        // C stdio, so that every failure names its reason (no such directory, permission denied,
        // disk full).
        func cannotWrite() -> CLIError { CLIError("cannot write \(out): \(String(cString: strerror(errno)))") }
        guard let file = fopen(out, "w") else { throw cannotWrite() }
        var needsClose = true
        defer { if needsClose { fclose(file) } }
        func write(_ text: String) throws {
            let bytes = Array(text.utf8)
            guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw cannotWrite() }
        }
        var rng = SplitMix64(seed: seed)
        let columns = ["id", "ts"] + (0..<features).map { "f\($0)" } + ["segment", "score", "label"]
        var text = columns.joined(separator: ",") + "\n"
        let segments = ["alpha", "beta", "gamma", "delta"]
        let start = Int64(Date().timeIntervalSince1970 * 1000)
        for row in 0..<rows {
            var line = "r\(seed)-\(row),\(start + Int64(row)),"
            var logit = 0.0
            for f in 0..<features {
                let value = rng.normal() * Double(f + 1) + Double(f) + (f % 2 == 0 ? shift * Double(f + 1) : 0)
                logit += value / Double((f + 1) * features)
                line += rng.uniform() < missing ? "," : String(format: "%.5f,", value)
            }
            let u = rng.uniform() + (shift > 0 ? 0.3 : 0)
            line += segments[min(3, Int(u * 4 * (shift > 0 ? 0.8 : 1)))] + ","
            let score = 1 / (1 + exp(-logit))
            let label = rng.uniform() < score ? 1 : 0
            line += String(format: "%.5f,%d\n", score, label)
            text += line
            if text.utf8.count > 1 << 20 {
                try write(text)
                text = ""
            }
        }
        try write(text)
        needsClose = false
        guard fclose(file) == 0 else { throw cannotWrite() }
        if json {
            try printJSON(Summary(path: out, rows: rows, columns: columns, shift: shift, seed: seed))
        } else {
            print("wrote \(rows) rows x \(columns.count) columns to \(out)")
        }
    }
}

extension SplitMix64 {
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * uniform())
    }
}
