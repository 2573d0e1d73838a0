import ArgumentParser
import Foundation
import Wire

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what a node holds for a model: rows, and per-feature figures."
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Model id.")
    var model: String

    @Option(name: .customLong("timeout-ms"), help: "Deadline for the request.")
    var timeoutMs = 10_000

    @Flag(help: "Print the status as JSON.")
    var json = false

    struct Feature: Encodable {
        var name: String
        var type: String
        var count: UInt64
        var missing: UInt64
        var type_mismatches: UInt64
        var non_finite: UInt64?
        var min: Double?
        var max: Double?
        var mean: Double?
        var variance: Double?
        var quantiles: [String: Double]?
        var true_count: UInt64?
        var distinct_estimate: Double?
        var top_values: [TopValue]?
    }

    struct TopValue: Encodable {
        var value: String
        var count: UInt64
    }

    struct Output: Encodable {
        var model: String
        var rows: UInt64
        var batches: UInt64
        var shard: UInt32
        var last_event_time_unix_ms: Int64
        var prediction_column: String?
        var label_column: String?
        var features: [Feature]
    }

    func run() async throws {
        let client = try NodeClient(address: node, timeout: .milliseconds(timeoutMs))
        defer { client.close() }
        let response = try await client.send(.with {
            $0.version = 1
            $0.status = .with { $0.modelID = model }
        })
        let status = response.outcome
        guard status.code == .ok else { throw CLIError("\(node): \(statusLine(status))") }
        let m = response.status.model
        let output = Output(
            model: m.modelID, rows: m.rows, batches: m.batches, shard: m.shard,
            last_event_time_unix_ms: m.lastEventTimeUnixMs,
            prediction_column: m.predictionColumn.isEmpty ? nil : m.predictionColumn,
            label_column: m.labelColumn.isEmpty ? nil : m.labelColumn,
            features: m.features.map(Self.feature))
        if json {
            try printJSON(output)
            return
        }
        print("model \(m.modelID): \(m.rows) rows in \(m.batches) batches (shard \(m.shard))")
        var rows = [["feature", "type", "count", "missing", "mismatch", "min", "mean", "max", "std", "p50", "distinct/top"]]
        for f in output.features {
            let numeric = f.type == "double"
            rows.append([
                f.name, f.type, String(f.count), String(f.missing), String(f.type_mismatches),
                numeric ? f.min.map(\.short) ?? "-" : "-", numeric ? f.mean.map(\.short) ?? "-" : "-",
                numeric ? f.max.map(\.short) ?? "-" : "-", numeric ? f.variance.map { $0.squareRoot().short } ?? "-" : "-",
                f.quantiles?["p50"].map(\.short) ?? "-",
                numeric ? "-" : "\(Int((f.distinct_estimate ?? 0).rounded())) / \(f.top_values?.first?.value ?? "-")",
            ])
        }
        printTable(rows)
    }

    static func feature(_ f: Infranaut_V1_FeatureStatus) -> Feature {
        let numeric = f.type == .double
        let hasValues = f.count > 0
        return Feature(
            name: f.name, type: f.type.wireName, count: f.count, missing: f.missing, type_mismatches: f.typeMismatches,
            non_finite: numeric ? f.nonFinite : nil,
            min: numeric && hasValues ? f.min : nil, max: numeric && hasValues ? f.max : nil,
            // The sample variance of one value is undefined (the node reports 0): null, not 0.
            mean: numeric && hasValues ? f.mean : nil, variance: numeric && f.count > 1 ? f.variance : nil,
            quantiles: numeric && hasValues
                ? Dictionary(uniqueKeysWithValues: f.quantiles.map { ("p\(Int(($0.q * 100).rounded()))", $0.value) })
                : nil,
            true_count: f.type == .bool ? f.trueCount : nil,
            distinct_estimate: numeric ? nil : f.distinctEstimate,
            top_values: numeric ? nil : f.topValues.map { TopValue(value: $0.value, count: $0.count) })
    }
}
