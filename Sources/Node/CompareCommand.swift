import ArgumentParser
import Foundation
import Monitoring
import Wire

struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two versions of a model on a performance metric, with a significance test.",
        discussion: """
            Merges each version's labelled rows over its whole-model windows whose start is in
            [--from, --to) (stored, closing and open) and compares the metric: each version's value and
            sample size, the difference a - b with a 95% confidence interval, a two-sided p-value, and
            the better version when p < 0.05. The tests are listed in docs/performance.md.
            """
    )

    @OptionGroup var target: NodeTarget

    @Option(help: "Model id.")
    var model: String

    @Option(help: "The first version (\"\" is the default version).")
    var a: String

    @Option(help: "The second version.")
    var b: String

    @Option(help: "roc_auc, accuracy or f1 (classification), rmse or mae (regression).")
    var metric: String

    @Option(help: "Only windows starting at or after this time: RFC 3339, or Unix ms.")
    var from: String?

    @Option(help: "Only windows starting before this time: RFC 3339, or Unix ms.")
    var to: String?

    @Flag(help: "Print the comparison as JSON.")
    var json = false

    func validate() throws {
        guard ComparedMetric(rawValue: metric) != nil else {
            throw ValidationError(
                "--metric must be one of \(ComparedMetric.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, Self.unixMs(value) == nil {
                throw ValidationError("\(name) \"\(value)\" is neither RFC 3339 (2026-11-30T12:00:00Z) nor Unix ms")
            }
        }
    }

    static func unixMs(_ text: String) -> Int64? {
        if let ms = Int64(text), ms >= 0 { return ms }
        for options in [
            ISO8601DateFormatter.Options.withInternetDateTime, [.withInternetDateTime, .withFractionalSeconds],
        ] {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        }
        return nil
    }

    struct Side: Encodable {
        var version: String
        var value: Double
        var labelled_rows: UInt64
        var windows: UInt32
    }

    struct Result: Encodable {
        var model: String
        var metric: String
        var a: Side
        var b: Side
        var difference: Double
        var ci95: [Double]
        var p_value: Double
        var test: String
        var better: String?
    }

    func run() async throws {
        let response = try await target.ask(
            .compare(
                .with {
                    $0.modelID = model
                    $0.versionA = a
                    $0.versionB = b
                    $0.metric = metric
                    $0.fromUnixMs = from.flatMap(Self.unixMs) ?? 0
                    $0.toUnixMs = to.flatMap(Self.unixMs) ?? 0
                }))
        let reply = response.compare
        func side(_ s: Infranaut_V1_CompareSide) -> Side {
            Side(version: s.version, value: s.value, labelled_rows: s.labelledRows, windows: s.windows)
        }
        let result = Result(
            model: model, metric: reply.metric, a: side(reply.a), b: side(reply.b), difference: reply.difference,
            ci95: [reply.lower, reply.upper], p_value: reply.pValue, test: reply.test,
            better: reply.better.isEmpty ? nil : reply.better)
        if json {
            try printJSON(result)
            return
        }
        func name(_ version: String) -> String { version.isEmpty ? "(default)" : version }
        printTable([
            ["VERSION", metric.uppercased(), "LABELLED", "WINDOWS"],
            ["a: \(name(a))", format(reply.a.value), "\(reply.a.labelledRows)", "\(reply.a.windows)"],
            ["b: \(name(b))", format(reply.b.value), "\(reply.b.labelledRows)", "\(reply.b.windows)"],
        ])
        print(
            "a - b = \(format(reply.difference)) (95% CI \(format(reply.lower)) to \(format(reply.upper))), p = \(String(format: "%.3g", reply.pValue)), \(reply.test)"
        )
        print(
            reply.better.isEmpty
                ? "no significant difference at 5%"
                : "\(reply.better) (\(name(reply.better == "a" ? a : b))) is better")
    }

    private func format(_ value: Double) -> String { String(format: "%.4f", value) }
}
