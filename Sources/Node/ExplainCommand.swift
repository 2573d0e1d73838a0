import ArgumentParser
import Foundation
import Wire

struct ExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Root-cause hints for one window: which features and segments explain a drop or drift.",
        discussion: """
            For the whole-model window holding --window: whether its performance (realized, else
            estimated) fell below the labelled reference's by more than 3 sampling errors; its features
            ranked by drift (how far past the threshold) and by the change of their mean |attribution|
            (columns named shap.<feature>); its segments ranked by their share of the errors against
            their share of the rows. docs/performance.md explains the figures.
            """
    )

    @OptionGroup var target: NodeTarget

    @Option(help: "Model id.")
    var model: String

    @Option(help: "A time inside the window (its start names it): RFC 3339, or Unix ms.")
    var window: String

    @Option(help: "The model version (\"\" is the default version).")
    var version = ""

    @Option(help: "Features and segments listed at most, each.")
    var top: UInt32 = 5

    @Flag(help: "Print the hints as JSON.")
    var json = false

    func validate() throws {
        guard CompareCommand.unixMs(window) != nil else {
            throw ValidationError("--window \"\(window)\" is neither RFC 3339 (2026-11-30T12:00:00Z) nor Unix ms")
        }
        guard (1...1_000).contains(top) else { throw ValidationError("--top must be between 1 and 1000") }
    }

    struct Performance: Encodable {
        var metric: String
        var value: Double
        var estimated: Bool
        var reference: Double?
        var margin: Double?
        var dropped: Bool
    }

    struct Feature: Encodable {
        var name: String
        var drift: Bool
        var method: String?
        var score: Double?
        var threshold: Double?
        var severity: Double
        var importance: Double?
        var attribution: Double?
        var reference_attribution: Double?
        var attribution_change: Double?
        var attribution_shifted: Bool
    }

    struct Segment: Encodable {
        var column: String
        var value: String?
        var kind: String
        var rows: Double
        var row_share: Double
        var errors: Double
        var error_share: Double
        var lift: Double
        var metric_value: Double
    }

    struct Result: Encodable {
        var model: String
        var version: String
        var start: String
        var end: String
        var rows: UInt64
        var dataset_drift: Bool
        var drift_share: Double
        var performance: Performance?
        var features: [Feature]
        var features_total: UInt32
        var segment_basis: String?
        var segments: [Segment]
        var segments_total: UInt32
    }

    func run() async throws {
        let response = try await target.ask(
            .explain(
                .with {
                    $0.modelID = model
                    $0.windowUnixMs = CompareCommand.unixMs(window) ?? 0
                    $0.version = version
                    $0.top = top
                }))
        let reply = response.explain
        let result = Self.result(reply, model: model)
        if json {
            try printJSON(result)
            return
        }
        print("model \(model), window \(result.start) to \(result.end), \(result.rows) rows")
        if let p = result.performance {
            let how = p.estimated ? "estimated" : "realized"
            var line = "performance: \(p.metric) \(format(p.value)) (\(how))"
            if let reference = p.reference, let margin = p.margin {
                line += ", reference \(format(reference)) ± \(format(margin))"
                line += p.dropped ? ": DROPPED" : ": within the margin"
            }
            print(line)
        } else {
            print("performance: none (no labels, and no labelled reference to estimate from)")
        }
        print(
            "drift: \(result.dataset_drift ? "dataset drift" : "no dataset drift"), \(Int((result.drift_share * 100).rounded()))% of features drift"
        )
        if !result.features.isEmpty {
            print("")
            var rows = [["FEATURE", "DRIFT", "SEVERITY", "METHOD", "IMPORTANCE", "ATTRIBUTION CHANGE"]]
            for f in result.features {
                rows.append([
                    f.name, f.drift ? "yes" : "no", format(f.severity), f.method ?? "-",
                    f.importance.map { percent($0) } ?? "-",
                    f.attribution_change.map { (f.attribution_shifted ? "! " : "") + signedPercent($0) } ?? "-",
                ])
            }
            printTable(rows)
            if result.features_total > result.features.count {
                print("(\(result.features_total - UInt32(result.features.count)) more features: --top)")
            }
        }
        if let basis = result.segment_basis, !result.segments.isEmpty {
            print("")
            var rows = [["SEGMENT", "ROWS", "SHARE OF ROWS", "SHARE OF ERRORS", "LIFT", basis.uppercased()]]
            for s in result.segments {
                rows.append([
                    "\(s.column)=\(s.value ?? "(\(s.kind))")", format(s.rows, digits: 0), percent(s.row_share),
                    percent(s.error_share), format(s.lift, digits: 2), format(s.metric_value),
                ])
            }
            printTable(rows)
        }
    }

    static func result(_ reply: Infranaut_V1_ExplainResponse, model: String) -> Result {
        let w = reply.window
        let p = reply.hasPerformance ? reply.performance : nil
        return Result(
            model: model, version: w.version, start: rfc3339(w.startUnixMs), end: rfc3339(w.endUnixMs), rows: w.rows,
            dataset_drift: w.datasetDrift, drift_share: w.driftShare,
            performance: p.map(Self.performance), features: reply.features.map(Self.feature),
            features_total: reply.featuresTotal,
            segment_basis: reply.segmentBasis.isEmpty ? nil : reply.segmentBasis,
            segments: reply.segments.map(Self.segment), segments_total: reply.segmentsTotal)
    }

    static func performance(_ p: Infranaut_V1_ExplainPerformance) -> Performance {
        Performance(
            metric: p.metric, value: p.value, estimated: p.estimated, reference: p.referenced ? p.reference : nil,
            margin: p.referenced ? p.margin : nil, dropped: p.dropped)
    }

    static func feature(_ f: Infranaut_V1_FeatureHint) -> Feature {
        Feature(
            name: f.name, drift: f.drift, method: f.method.isEmpty ? nil : f.method,
            score: f.method.isEmpty ? nil : f.score, threshold: f.method.isEmpty ? nil : f.threshold,
            severity: f.severity, importance: f.attributed ? f.importance : nil,
            attribution: f.attributed ? f.attribution : nil,
            reference_attribution: f.attributionReferenced ? f.referenceAttribution : nil,
            attribution_change: f.attributionReferenced ? f.attributionChange : nil,
            attribution_shifted: f.attributionShifted)
    }

    static func segment(_ s: Infranaut_V1_SegmentHint) -> Segment {
        Segment(
            column: s.column, value: s.kind == .value ? s.value : nil,
            kind: s.kind == .value ? "value" : s.kind == .missing ? "missing" : "other", rows: s.rows,
            row_share: s.rowShare, errors: s.errors, error_share: s.errorShare, lift: s.lift,
            metric_value: s.metricValue)
    }

    private func format(_ value: Double, digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }
    private func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }
    private func signedPercent(_ change: Double) -> String { String(format: "%+.0f%%", change * 100) }
}
