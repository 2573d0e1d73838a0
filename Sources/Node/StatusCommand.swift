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

    @Option(name: .customLong("max-features"), help: "Features to show (default: all, fetched in pages of 1,000).")
    var maxFeatures: Int?

    @Option(name: .customLong("features-after"), help: "Show only features whose name sorts after this one.")
    var featuresAfter = ""

    func validate() throws {
        if let maxFeatures, maxFeatures < 0 { throw ValidationError("--max-features must be 0 or more") }
    }

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
        var std_dev: Double?
        var quantiles: [String: Double]?
        var true_count: UInt64?
        var distinct_estimate: Double?
        var top_values: [TopValue]?
    }

    struct TopValue: Encodable {
        var value: String
        var count: UInt64
    }

    /// Everything but the features, which are streamed after it (`features`, last).
    struct Header: Encodable {
        var model: String
        var rows: UInt64
        var batches: UInt64
        var shard: UInt32
        var last_event_time_unix_ms: Int64
        var prediction_column: String?
        var label_column: String?
        var features_total: UInt64
        var spec_generation: UInt64
        var reference_rows: [String: UInt64]
        var latest_windows: [WindowsCommand.Window]
    }

    /// Fetches the status page by page (at most 1,000 features each, sorted by name) and prints each
    /// page before asking for the next, so memory stays bounded by one page whatever the model holds.
    /// Counts come from the first page; features of later pages may have grown since.
    func run() async throws {
        let client = try NodeClient(address: node, timeout: .milliseconds(timeoutMs))
        defer { client.close() }
        var remaining = maxFeatures ?? Int.max
        var cursor = featuresAfter
        var printer: FeaturePrinter?
        repeat {
            let page = try await fetch(client, after: cursor, limit: remaining)
            if printer == nil {
                printer = try FeaturePrinter(json: json, header: page)
            }
            let features = page.model.features.prefix(remaining)
            try printer?.print(features.map(Self.feature))
            remaining -= features.count
            cursor = page.nextFeaturesAfter
        } while !cursor.isEmpty && remaining > 0
        printer?.finish()
    }

    private func fetch(_ client: NodeClient, after: String, limit: Int) async throws -> Infranaut_V1_StatusResponse {
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.status = .with {
                    $0.modelID = model
                    $0.featuresAfter = after
                    $0.maxFeatures = UInt32(min(limit, StatusPaging.maxFeatures))
                }
            })
        let status = response.outcome
        guard status.code == .ok else { throw CLIError("\(node): \(statusLine(status))") }
        return response.status
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
            std_dev: numeric && f.count > 1 ? f.stdDev : nil,
            quantiles: numeric && hasValues
                ? Dictionary(uniqueKeysWithValues: f.quantiles.map { ("p\(Int(($0.q * 100).rounded()))", $0.value) })
                : nil,
            true_count: f.type == .bool ? f.trueCount : nil,
            distinct_estimate: numeric ? nil : f.distinctEstimate,
            top_values: numeric ? nil : f.topValues.map { TopValue(value: $0.value, count: $0.count) })
    }
}

/// Prints a status as it arrives: the header, then each page of features. JSON output is one object
/// whose `features` array is written element by element; the table keeps the first page's widths.
private struct FeaturePrinter {
    let json: Bool
    var widths: [Int] = []
    var printedFeatures = 0

    init(json: Bool, header page: Infranaut_V1_StatusResponse) throws {
        self.json = json
        let m = page.model
        if json {
            let header = StatusCommand.Header(
                model: m.modelID, rows: m.rows, batches: m.batches, shard: m.shard,
                last_event_time_unix_ms: m.lastEventTimeUnixMs,
                prediction_column: m.predictionColumn.isEmpty ? nil : m.predictionColumn,
                label_column: m.labelColumn.isEmpty ? nil : m.labelColumn,
                features_total: page.featuresTotal, spec_generation: m.specGeneration, reference_rows: m.referenceRows,
                latest_windows: m.latestWindows.map(WindowsCommand.Window.init))
            // The header object without its closing brace, reopened for the features array.
            let rendered = try renderJSON(header)
            var text = rendered[..<(rendered.lastIndex(of: "}") ?? rendered.endIndex)]
            while text.last == "\n" || text.last == " " { text.removeLast() }
            Swift.print(text + ",\n  \"features\" : [", terminator: "")
        } else {
            Swift.print(
                "model \(m.modelID): \(m.rows) rows in \(m.batches) batches (shard \(m.shard)), \(page.featuresTotal) features"
            )
            if m.specGeneration > 0 { Swift.print("spec: generation \(m.specGeneration)") }
            for (version, rows) in m.referenceRows.sorted(by: { $0.key < $1.key }) {
                Swift.print("reference\(version.isEmpty ? "" : " (version \(version))"): \(rows) rows")
            }
            for window in m.latestWindows {
                let drifting = window.features.filter(\.drift).map(\.name)
                Swift.print(
                    "latest window\(window.version.isEmpty ? "" : " (version \(window.version))") \(rfc3339(window.startUnixMs)): \(window.rows) rows, \(window.lateRows) late, drift share "
                        + String(format: "%.2f", window.driftShare) + (window.datasetDrift ? " (dataset drift)" : "")
                        + (drifting.isEmpty ? "" : ", drifting: " + drifting.joined(separator: ", ")))
            }
        }
    }

    mutating func print(_ features: [StatusCommand.Feature]) throws {
        if json {
            for feature in features {
                let text = try renderJSON(feature).split(separator: "\n", omittingEmptySubsequences: false)
                    .map { "    " + $0 }.joined(separator: "\n")
                Swift.print((printedFeatures == 0 ? "\n" : ",\n") + text, terminator: "")
                printedFeatures += 1
            }
            return
        }
        var rows: [[String]] =
            printedFeatures == 0
            ? [["feature", "type", "count", "missing", "mismatch", "min", "mean", "max", "std", "p50", "distinct/top"]]
            : []
        for f in features {
            let numeric = f.type == "double"
            rows.append([
                f.name, f.type, String(f.count), String(f.missing), String(f.type_mismatches),
                numeric ? f.min.map(\.short) ?? "-" : "-", numeric ? f.mean.map(\.short) ?? "-" : "-",
                numeric ? f.max.map(\.short) ?? "-" : "-", numeric ? f.std_dev.map(\.short) ?? "-" : "-",
                f.quantiles?["p50"].map(\.short) ?? "-",
                numeric ? "-" : "\(Int((f.distinct_estimate ?? 0).rounded())) / \(f.top_values?.first?.value ?? "-")",
            ])
        }
        printedFeatures += features.count
        if widths.isEmpty, let first = rows.first {
            widths = first.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        }
        printTable(rows, widths: widths)
    }

    func finish() {
        if json { Swift.print(printedFeatures == 0 ? "]\n}" : "\n  ]\n}") }
    }
}
