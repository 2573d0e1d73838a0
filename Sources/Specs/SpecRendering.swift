public import Wire

/// A spec written out: YAML in the form `infranaut apply` reads (so `get model -o yaml` can be
/// saved, edited and applied), or JSON with the same structure.
public enum SpecRendering {
    /// Defaults filled in, so that two specs that mean the same compare equal and a shown spec says
    /// what is in force.
    public static func normalized(_ spec: Infranaut_V1_ModelSpec) -> Infranaut_V1_ModelSpec {
        var spec = spec
        if spec.window.sizeMs == 0 { spec.window.sizeMs = 3_600_000 }
        if spec.reference.policy == .unspecified { spec.reference.policy = .upload }
        if spec.drift.method.isEmpty { spec.drift.method = "auto" }
        if spec.drift.datasetShare == 0 { spec.drift.datasetShare = 0.5 }
        let method = spec.drift.method
        for (name, override) in spec.drift.perFeature where override.method.isEmpty {
            spec.drift.perFeature[name]?.method = method
        }
        if spec.retention.windowsMs == 0 { spec.retention.windowsMs = 90 * 86_400_000 }
        if spec.retention.predictionsMs == 0 { spec.retention.predictionsMs = 7 * 86_400_000 }
        return spec
    }

    /// The spec's word for `task` (`binary-classification`, ...); nil when unspecified.
    public static func taskName(_ task: Infranaut_V1_ModelTask) -> String? {
        switch task {
        case .binaryClassification: "binary-classification"
        case .multiclassClassification: "multiclass-classification"
        case .regression: "regression"
        default: nil
        }
    }

    static func typeName(_ type: Infranaut_V1_SpecFeatureType) -> String {
        switch type {
        case .numeric: "numeric"
        case .categorical: "categorical"
        case .boolean: "boolean"
        default: "unspecified"
        }
    }

    static func policyName(_ policy: Infranaut_V1_ReferencePolicy) -> String {
        switch policy {
        case .firstRows: "first-rows"
        case .previousWindow: "previous-window"
        default: "upload"
        }
    }

    /// A value tree in document order, rendered by ``yaml(_:)`` and ``json(_:)``.
    public indirect enum Value: Sendable, Equatable {
        case string(String)
        case number(Double)
        case integer(UInt64)
        case bool(Bool)
        case list([Value])
        case map([(String, Value)])

        public static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case (.string(let x), .string(let y)): x == y
            case (.number(let x), .number(let y)): x == y
            case (.integer(let x), .integer(let y)): x == y
            case (.bool(let x), .bool(let y)): x == y
            case (.list(let x), .list(let y)): x == y
            case (.map(let x), .map(let y)): x.map(\.0) == y.map(\.0) && x.map(\.1) == y.map(\.1)
            default: false
            }
        }
    }

    /// The whole object: apiVersion, kind, metadata (with the generation, and the note that the
    /// spec was inferred when it was) and spec.
    public static func document(
        _ spec: Infranaut_V1_ModelSpec, generation: UInt64, inferred: Bool
    ) -> Value {
        let spec = normalized(spec)
        var metadata: [(String, Value)] = [("name", .string(spec.name))]
        if !spec.labels.isEmpty {
            metadata.append(
                ("labels", .map(spec.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        if generation > 0 { metadata.append(("generation", .integer(generation))) }
        if inferred {
            metadata.append(
                (
                    "annotations",
                    .map([("infranaut.io/inferred", .string("from telemetry; edit and apply to declare it"))])
                ))
        }
        var body: [(String, Value)] = []
        if let task = taskName(spec.task) { body.append(("task", .string(task))) }
        let roles: [(String, String)] = [
            ("id", spec.columns.id), ("timestamp", spec.columns.timestamp), ("prediction", spec.columns.prediction),
            ("label", spec.columns.label), ("version", spec.columns.version),
        ].filter { !$0.1.isEmpty }
        if !roles.isEmpty { body.append(("columns", .map(roles.map { ($0.0, .string($0.1)) }))) }
        if !spec.features.isEmpty {
            body.append(
                (
                    "features",
                    .list(
                        spec.features.map { feature in
                            var fields: [(String, Value)] = [
                                ("name", .string(feature.name)), ("type", .string(typeName(feature.type))),
                            ]
                            if feature.bounded {
                                fields.append(("range", .list([.number(feature.min), .number(feature.max)])))
                            }
                            return .map(fields)
                        })
                ))
        }
        if !spec.segments.isEmpty { body.append(("segments", .list(spec.segments.map { .string($0) }))) }
        body.append(
            (
                "window",
                .map([
                    ("size", .string(SpecDuration.text(spec.window.sizeMs))),
                    ("lateness", .string(SpecDuration.text(spec.window.latenessMs))),
                ])
            ))
        var reference: [(String, Value)] = [("from", .string(policyName(spec.reference.policy)))]
        if spec.reference.policy == .firstRows { reference.append(("rows", .integer(spec.reference.rows))) }
        body.append(("reference", .map(reference)))
        var drift: [(String, Value)] = [("method", .string(spec.drift.method))]
        if spec.drift.threshold != 0 { drift.append(("threshold", .number(spec.drift.threshold))) }
        drift.append(("dataset_share", .number(spec.drift.datasetShare)))
        if !spec.drift.perFeature.isEmpty {
            drift.append(
                (
                    "per_feature",
                    .map(
                        spec.drift.perFeature.sorted { $0.key < $1.key }.map { name, override in
                            var fields: [(String, Value)] = [("method", .string(override.method))]
                            if override.threshold != 0 { fields.append(("threshold", .number(override.threshold))) }
                            return (name, .map(fields))
                        })
                ))
        }
        body.append(("drift", .map(drift)))
        body.append(
            (
                "retention",
                .map([
                    ("windows", .string(SpecDuration.text(spec.retention.windowsMs))),
                    ("predictions", .string(SpecDuration.text(spec.retention.predictionsMs))),
                ])
            ))
        var performance: [(String, Value)] = []
        if spec.performance.threshold != 0 { performance.append(("threshold", .number(spec.performance.threshold))) }
        if !spec.performance.classes.isEmpty {
            performance.append(("classes", .list(spec.performance.classes.map { .string($0) })))
        }
        if !performance.isEmpty { body.append(("performance", .map(performance))) }
        if !spec.alerts.isEmpty { body.append(("alerts", .list(spec.alerts.map(alertRule)))) }
        return .map([
            ("apiVersion", .string(SpecDocuments.apiVersion)), ("kind", .string("Model")),
            ("metadata", .map(metadata)), ("spec", .map(body)),
        ])
    }

    /// One rule as a spec writes it (docs/alerting.md).
    static func alertRule(_ rule: Infranaut_V1_AlertRule) -> Value {
        var fields: [(String, Value)] = [("name", .string(rule.name))]
        if rule.disabled { return .map(fields + [("disabled", .bool(true))]) }
        fields.append(("metric", .string(rule.metric)))
        if !rule.feature.isEmpty { fields.append(("feature", .string(rule.feature))) }
        switch rule.condition {
        case .above(let v)?: fields.append(("condition", .map([("above", .number(v))])))
        case .below(let v)?: fields.append(("condition", .map([("below", .number(v))])))
        case .anomaly(let v)?: fields.append(("condition", .map([("anomaly", .number(v))])))
        case .changePoint(let v)?: fields.append(("condition", .map([("change_point", .number(v))])))
        case nil: break
        }
        fields.append(("for", .integer(UInt64(max(1, rule.forWindows)))))
        let severity: String =
            switch rule.severity {
            case .info: "info"
            case .critical: "critical"
            default: "warning"
            }
        fields.append(("severity", .string(severity)))
        if !rule.labels.isEmpty {
            fields.append(("labels", .map(rule.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
        }
        if !rule.summary.isEmpty { fields.append(("summary", .string(rule.summary))) }
        if !rule.runbookURL.isEmpty { fields.append(("runbook_url", .string(rule.runbookURL))) }
        if !rule.notify.isEmpty { fields.append(("notify", .list(rule.notify.map { .string($0) }))) }
        if rule.perSegment { fields.append(("per_segment", .bool(true))) }
        return .map(fields)
    }

    public static func yaml(_ value: Value) -> String {
        var out = ""
        emit(value, indent: 0, into: &out)
        return out
    }

    private static func emit(_ value: Value, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent)
        switch value {
        case .map(let pairs):
            for (key, child) in pairs {
                out += pad + scalar(key) + ":"
                if let flow = flow(child, width: 100 - indent - key.count) {
                    out += " " + flow + "\n"
                } else {
                    out += "\n"
                    emit(child, indent: indent + 2, into: &out)
                }
            }
        case .list(let items):
            for item in items {
                if let flow = flow(item, width: 100 - indent - 2) {
                    out += pad + "- " + flow + "\n"
                } else {
                    // "- first: x" then the other keys aligned under it.
                    var nested = ""
                    emit(item, indent: indent + 2, into: &nested)
                    out += pad + "- " + nested.dropFirst(indent + 2)
                }
            }
        default:
            out += pad + inline(value) + "\n"
        }
    }

    /// `value` on one line (`{size: 1h, lateness: 0}`, `[a, b]`) when it holds scalars, or lists of
    /// scalars, and fits in `width`; nil otherwise.
    private static func flow(_ value: Value, width: Int) -> String? {
        func scalarOnly(_ value: Value) -> Bool {
            switch value {
            case .map: false
            case .list(let items):
                items.allSatisfy { if case .map = $0 { false } else if case .list = $0 { false } else { true } }
            default: true
            }
        }
        switch value {
        case .map(let pairs): guard pairs.allSatisfy({ scalarOnly($0.1) }) else { return nil }
        case .list: guard scalarOnly(value) else { return nil }
        default: break
        }
        let text = inline(value)
        return text.count <= width ? text : nil
    }

    private static func inline(_ value: Value) -> String {
        switch value {
        case .string(let text): scalar(text)
        case .number(let x): number(x)
        case .integer(let n): "\(n)"
        case .bool(let b): b ? "true" : "false"
        case .list(let items): "[" + items.map(inline).joined(separator: ", ") + "]"
        case .map(let pairs): "{" + pairs.map { scalar($0.0) + ": " + inline($0.1) }.joined(separator: ", ") + "}"
        }
    }

    static func number(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }

    /// A plain scalar when YAML reads it back as the same string, else a double-quoted one. A
    /// duration (`1h`, `0`) stays plain: the reader takes durations as written.
    static func scalar(_ text: String) -> String {
        if SpecDuration.milliseconds(text) != nil { return text }
        let plain =
            !text.isEmpty
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) }
            && !(text.first!.isNumber || text.first! == "-" || text.first! == ".")
            && !["true", "false", "yes", "no", "on", "off", "null", "y", "n"].contains(text.lowercased())
        return plain ? text : quoted(text)
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 {
                    out +=
                        "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                        + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    public static func json(_ value: Value, indent: Int = 0) -> String {
        let pad = String(repeating: " ", count: indent)
        let inner = String(repeating: " ", count: indent + 2)
        switch value {
        case .string(let text): return quoted(text)
        case .number(let x): return x.isFinite ? number(x) : "null"
        case .integer(let n): return "\(n)"
        case .bool(let b): return b ? "true" : "false"
        case .list(let items):
            guard !items.isEmpty else { return "[]" }
            return "[\n" + items.map { inner + json($0, indent: indent + 2) }.joined(separator: ",\n") + "\n" + pad
                + "]"
        case .map(let pairs):
            guard !pairs.isEmpty else { return "{}" }
            return "{\n"
                + pairs.map { inner + quoted($0.0) + ": " + json($0.1, indent: indent + 2) }.joined(separator: ",\n")
                + "\n" + pad + "}"
        }
    }
}
