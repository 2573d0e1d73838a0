import ArgumentParser
import Foundation
import Wire

/// `infranaut windows`: a model's window results, oldest first (docs/windows.md).
struct WindowsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "windows",
        abstract: "Show a model's windows: drift per feature, data quality and volume, oldest first.")

    @OptionGroup var target: NodeTarget

    @Option(help: "Model id.")
    var model: String

    @Option(help: "Only this model version's windows.")
    var version: String?

    @Option(help: "Only one segment's windows: COLUMN=VALUE (or 'none' for the whole model's only).")
    var segment: String?

    @Option(help: "The newest N windows of each series.")
    var last: UInt32 = 0

    @Flag(name: .customLong("include-open"), help: "Also the open windows, evaluated so far.")
    var includeOpen = false

    @Flag(help: "Print the windows as JSON.")
    var json = false

    func validate() throws {
        if let segment, segment != "none", !segment.contains("=") {
            throw ValidationError("--segment takes COLUMN=VALUE, or none")
        }
    }

    func run() async throws {
        let response = try await target.ask(
            .windows(
                .with {
                    $0.modelID = model
                    if let version {
                        $0.filterVersion = true
                        $0.version = version
                    }
                    if segment == "none" {
                        $0.wholeModelOnly = true
                    } else if let segment, let cut = segment.firstIndex(of: "=") {
                        $0.segmentColumn = String(segment[..<cut])
                        $0.segmentValue = String(segment[segment.index(after: cut)...])
                    }
                    $0.last = last
                    $0.includeOpen = includeOpen
                }))
        let reply = response.windows
        if json {
            try printJSON(Listing(model: model, truncated: reply.truncated, windows: reply.windows.map(Window.init)))
            return
        }
        let labelled = reply.windows.contains(where: \.hasPerformance)
        var table = [
            ["START (UTC)", "VERSION", "SEGMENT", "ROWS", "LATE", "DRIFT SHARE"] + (labelled ? ["PERFORMANCE"] : [])
                + ["DRIFTING"]
        ]
        for window in reply.windows {
            let drifting = window.features.filter(\.drift).map(\.name)
            table.append(
                [
                    rfc3339(window.startUnixMs) + (window.open ? " (open)" : ""),
                    window.version.isEmpty ? "-" : window.version,
                    Self.segmentText(window) ?? "all", "\(window.rows)", "\(window.lateRows)",
                    String(format: "%.2f", window.driftShare) + (window.datasetDrift ? " DRIFT" : ""),
                ] + (labelled ? [Self.performanceText(window)] : []) + [
                    drifting.isEmpty ? "-" : drifting.joined(separator: ", ")
                ])
        }
        printTable(table)
        if reply.truncated {
            print("only the newest windows are shown; narrow with --last, --version or --segment")
        }
        if reply.rejectedFutureRows + reply.rejectedWindowLimitRows > 0 {
            print(
                "rows refused by the windows: \(reply.rejectedFutureRows) dated over 1 h ahead, \(reply.rejectedWindowLimitRows) beyond the open-window limit"
            )
        }
    }

    /// The window's headline metric (ROC AUC, else accuracy, else RMSE) realized and its labelled
    /// rows, and the estimate beside it: "roc_auc 0.861 (est 0.857), 120 labelled".
    static func performanceText(_ window: Infranaut_V1_WindowInfo) -> String {
        guard window.hasPerformance else { return "-" }
        let p = window.performance
        let headline =
            ["roc_auc", "accuracy", "rmse"].first { p.realized[$0] != nil }
            ?? ["roc_auc", "accuracy"].first { p.estimated[$0] != nil }
        guard let headline else { return "\(p.labelledRows) labelled" }
        var parts: [String] = []
        if let v = p.realized[headline] { parts.append(String(format: "%.3f", v)) }
        if let e = p.estimated[headline] { parts.append(String(format: "(est %.3f)", e.value)) }
        return "\(headline) \(parts.joined(separator: " ")), \(p.labelledRows) labelled"
    }

    static func segmentText(_ window: Infranaut_V1_WindowInfo) -> String? {
        guard !window.segmentColumn.isEmpty else { return nil }
        switch window.segmentKind {
        case .missing: return "\(window.segmentColumn)=(missing)"
        case .other: return "\(window.segmentColumn)=(other)"
        default: return "\(window.segmentColumn)=\(window.segmentValue)"
        }
    }

    struct Listing: Encodable {
        var model: String
        var truncated: Bool
        var windows: [Window]
    }

    struct Window: Encodable {
        var start: String
        var end: String
        var version: String
        var segment: [String: String]?
        var open: Bool
        var rows: UInt64
        var late_rows: UInt64
        var drift_share: Double
        var dataset_drift: Bool
        var features: [Feature]
        var prediction: Feature?
        var quality: Quality
        /// Absent while no row of the window carried a label.
        var performance: Performance?

        init(_ w: Infranaut_V1_WindowInfo) {
            start = rfc3339(w.startUnixMs)
            end = rfc3339(w.endUnixMs)
            version = w.version
            segment =
                w.segmentColumn.isEmpty
                ? nil
                : [
                    w.segmentColumn: w.segmentKind == .value
                        ? w.segmentValue : w.segmentKind == .missing ? "(missing)" : "(other)"
                ]
            open = w.open
            rows = w.rows
            late_rows = w.lateRows
            drift_share = w.driftShare
            dataset_drift = w.datasetDrift
            features = w.features.map(Feature.init)
            prediction = w.hasPrediction ? Feature(w.prediction) : nil
            quality = Quality(
                expected_rows: w.hasExpectedRows_p ? w.expectedRows : nil, schema_added: w.schemaAdded,
                schema_missing: w.schemaMissing, schema_changed_type: w.schemaChangedType)
            performance = w.hasPerformance ? Performance(w.performance) : nil
        }
    }

    struct Performance: Encodable {
        var labelled_rows: UInt64
        var unusable_rows: UInt64
        var realized: [String: Double]
        var estimated: [String: Estimate]

        init(_ p: Infranaut_V1_WindowPerformanceInfo) {
            labelled_rows = p.labelledRows
            unusable_rows = p.unusableRows
            realized = p.realized
            estimated = p.estimated.mapValues(Estimate.init)
        }
    }

    struct Estimate: Encodable {
        var value: Double
        var lower: Double
        var upper: Double
        var sampling_error: Double

        init(_ e: Infranaut_V1_EstimatedMetricInfo) {
            value = e.value
            lower = e.lower
            upper = e.upper
            sampling_error = e.samplingError
        }
    }

    struct Quality: Encodable {
        var expected_rows: Double?
        var schema_added: [String]
        var schema_missing: [String]
        var schema_changed_type: [String]
    }

    struct Feature: Encodable {
        var name: String
        var type: String
        var method: String?
        var score: Double?
        var threshold: Double?
        var drift: Bool
        var note: String?
        var values: UInt64
        var missing_rate: Double
        var missing_rate_change: Double?
        var type_mismatches: UInt64
        var non_finite: UInt64
        var outside_spec_range_share: Double?
        var outside_reference_range_share: Double?
        var new_categories: UInt64?
        var new_category_values: UInt64?

        init(_ f: Infranaut_V1_FeatureWindowInfo) {
            name = f.name
            type = f.type
            method = f.method.isEmpty ? nil : f.method
            score = f.hasScore_p ? f.score : nil
            threshold = f.method.isEmpty ? nil : f.threshold
            drift = f.drift
            note = f.note.isEmpty ? nil : f.note
            values = f.values
            missing_rate = f.missingRate
            missing_rate_change = f.hasMissingRateChange_p ? f.missingRateChange : nil
            type_mismatches = f.typeMismatches
            non_finite = f.nonFinite
            outside_spec_range_share = f.hasOutsideSpecRangeShare_p ? f.outsideSpecRangeShare : nil
            outside_reference_range_share = f.hasOutsideReferenceRangeShare_p ? f.outsideReferenceRangeShare : nil
            new_categories = f.hasNewCategories_p ? f.newCategories : nil
            new_category_values = f.hasNewCategories_p ? f.newCategoryValues : nil
        }
    }
}
