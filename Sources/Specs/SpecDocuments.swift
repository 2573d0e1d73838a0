public import Wire
import Yams

/// One object of a spec file.
public struct SpecObject: Sendable {
    public enum Body: Sendable {
        case model(Infranaut_V1_ModelSpec)
        case channel(Infranaut_V1_NotificationChannel)
        /// `kind: AlertDefaults`: the default rules a node gives the models it accepts specs of
        /// (read by `start --alert-defaults`, not applied).
        case alertDefaults([Infranaut_V1_AlertRule])
    }

    public var body: Body
    /// The YAML line of each path read (`spec.features[0].type` → 12), to place the problems a
    /// node finds.
    public var lines: [String: Int]
    /// The line of the document's first key.
    public var line: Int

    /// The line of `path`, or of the nearest enclosing path that has one.
    public func line(of path: String) -> Int {
        var current = Substring(path)
        while !current.isEmpty {
            if let line = lines[String(current)] { return line }
            guard let cut = current.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            current = current[..<cut]
        }
        return line
    }
}

/// Reads spec files: YAML, one object per document (`---` between them), each with `apiVersion`,
/// `kind`, `metadata` and `spec`, in the form docs/models.md describes.
///
/// Reading never stops at the first problem: every field that is unknown, of the wrong shape or
/// out of range is reported with its path and line, and a file with any problem yields no objects
/// to apply, so an invalid file changes nothing.
public enum SpecDocuments {
    public static let apiVersion = "infranaut.io/v1"
    public static let kinds = ["Model", "NotificationChannel", "AlertDefaults"]

    /// The objects of `yaml` and every problem found in them (read and checked).
    public static func read(_ yaml: String, limits: SpecLimits = SpecLimits()) -> (
        objects: [SpecObject], problems: [SpecProblem]
    ) {
        var objects: [SpecObject] = []
        var problems: [SpecProblem] = []
        var documents: [Node] = []
        do {
            // The sequence stops at a syntax error and keeps it aside: without checking it, a
            // broken later document would silently shorten the file.
            var sequence = try Yams.compose_all(yaml: yaml)
            while let document = sequence.next() { documents.append(document) }
            if let error = sequence.error { throw error }
        } catch let error as YamlError {
            return ([], [SpecProblem("file", Self.describe(error), line: Self.line(of: error))])
        } catch {
            return ([], [SpecProblem("file", "not YAML: \(error)")])
        }
        for (index, document) in documents.enumerated() {
            let prefix = documents.count > 1 ? "document \(index + 1): " : ""
            var reader = SpecReader()
            guard let object = reader.object(document) else {
                problems += reader.problems.map { SpecProblem($0.path, prefix + $0.message, line: $0.line) }
                continue
            }
            var found = reader.problems
            // A field the reader already refused is not reported again by the rules.
            let refused = Set(found.map(\.path))
            let ruled: [SpecProblem] =
                switch object.body {
                case .model(let spec): ModelSpecRules.problems(of: spec, limits: limits)
                case .channel(let channel): ChannelRules.problems(of: channel)
                case .alertDefaults(let rules): ModelSpecRules.alertDefaultsProblems(rules)
                }
            found += ruled.filter { !refused.contains($0.path) }.map {
                SpecProblem($0.path, $0.message, line: object.line(of: $0.path))
            }
            if found.isEmpty {
                objects.append(object)
            } else {
                problems += found.map { SpecProblem($0.path, prefix + $0.message, line: $0.line) }
            }
        }
        if documents.isEmpty { problems.append(SpecProblem("file", "no objects in the file")) }
        return (problems.isEmpty ? objects : [], problems)
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _):
            "not valid YAML: \(problem)"
        default:
            "not valid YAML: \(error)"
        }
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }
}

/// Walks one document, building the object and noting problems and lines.
struct SpecReader {
    var problems: [SpecProblem] = []
    var lines: [String: Int] = [:]

    mutating func problem(_ path: String, _ node: Node?, _ message: String) {
        problems.append(SpecProblem(path, message, line: node?.mark?.line))
    }

    /// The pairs of a mapping node, with unknown keys reported; nil (and a problem) when `node`
    /// is not a mapping.
    mutating func mapping(_ node: Node, at path: String, known: [String]) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            problem(path, node, "expected a mapping (key: value), found \(Self.shape(of: node))")
            return nil
        }
        var pairs: [String: Node] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            let child = path.isEmpty ? name : "\(path).\(name)"
            lines[child] = key.mark?.line
            guard known.contains(name) else {
                problem(child, key, "unknown field; expected one of \(known.joined(separator: ", "))")
                continue
            }
            guard pairs[name] == nil else {
                problem(child, key, "given twice")
                continue
            }
            pairs[name] = value
        }
        return pairs
    }

    /// A mapping of label keys to string values (the keys are checked by the spec's rules).
    mutating func labels(_ node: Node, at path: String) -> [String: String] {
        guard case .mapping(let pairs) = node else {
            problem(path, node, "expected a mapping (key: value), found \(Self.shape(of: node))")
            return [:]
        }
        var labels: [String: String] = [:]
        for (key, value) in pairs {
            let labelPath = "\(path).\(key.string ?? "")"
            lines[labelPath] = key.mark?.line
            if let text = string(value, at: labelPath) { labels[key.string ?? ""] = text }
        }
        return labels
    }

    mutating func string(_ node: Node, at path: String) -> String? {
        guard case .scalar(let scalar) = node, node.null == nil else {
            problem(path, node, "expected a string, found \(Self.shape(of: node))")
            return nil
        }
        return scalar.string
    }

    mutating func number(_ node: Node, at path: String) -> Double? {
        if case .scalar = node, let value = node.float ?? node.int.map(Double.init) { return value }
        problem(path, node, "expected a number, found \(Self.shape(of: node))")
        return nil
    }

    mutating func count(_ node: Node, at path: String) -> UInt64? {
        if case .scalar = node, let value = node.int, value >= 0 { return UInt64(value) }
        problem(path, node, "expected a whole number ≥ 0, found \(Self.shape(of: node))")
        return nil
    }

    mutating func duration(_ node: Node, at path: String) -> UInt64? {
        guard case .scalar(let scalar) = node, let ms = SpecDuration.milliseconds(scalar.string) else {
            problem(path, node, "expected a duration such as 90s, 10m, 1h or 7d, found \(Self.shape(of: node))")
            return nil
        }
        return ms
    }

    mutating func list(_ node: Node, at path: String) -> [Node]? {
        guard case .sequence(let sequence) = node else {
            problem(path, node, "expected a list, found \(Self.shape(of: node))")
            return nil
        }
        return Array(sequence)
    }

    /// A value from a fixed set of words.
    mutating func choice<T>(_ node: Node, at path: String, _ options: KeyValuePairs<String, T>) -> T? {
        guard let text = string(node, at: path) else { return nil }
        if let found = options.first(where: { $0.key == text }) { return found.value }
        problem(path, node, "\"\(text)\" is not one of \(options.map(\.key).joined(separator: ", "))")
        return nil
    }

    static func shape(of node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        case .scalar(let scalar):
            node.null != nil ? "nothing (null)" : "\"\(scalar.string.prefix(64))\""
        }
    }

    // MARK: - Objects

    mutating func object(_ document: Node) -> SpecObject? {
        guard let top = mapping(document, at: "", known: ["apiVersion", "kind", "metadata", "spec"]) else {
            return nil
        }
        let line = document.mark?.line ?? 1
        if let version = top["apiVersion"] {
            if let text = string(version, at: "apiVersion"), text != SpecDocuments.apiVersion {
                problem("apiVersion", version, "\"\(text)\" is not supported; use \(SpecDocuments.apiVersion)")
            }
        } else {
            problem("apiVersion", document, "missing; use \(SpecDocuments.apiVersion)")
        }
        guard let kindNode = top["kind"] else {
            problem("kind", document, "missing; expected one of \(SpecDocuments.kinds.joined(separator: ", "))")
            return nil
        }
        guard let kind = string(kindNode, at: "kind") else { return nil }
        if kind == "NotificationChannel" { return channel(top, document: document, line: line) }
        if kind == "AlertDefaults" { return alertDefaults(top, document: document, line: line) }
        guard kind == "Model" else {
            problem(
                "kind", kindNode, "\"\(kind)\" is not one of \(SpecDocuments.kinds.joined(separator: ", "))")
            return nil
        }
        var spec = Infranaut_V1_ModelSpec()
        if let metadata = top["metadata"] {
            readMetadata(metadata, into: &spec)
        } else {
            problem("metadata", document, "missing; a model needs metadata.name")
        }
        if let body = top["spec"] { readModel(body, into: &spec) }
        return SpecObject(body: .model(spec), lines: lines, line: line)
    }

    private mutating func readMetadata(_ node: Node, into spec: inout Infranaut_V1_ModelSpec) {
        // `generation` and `annotations` are the server's, shown by `get model -o yaml`; a saved
        // output applied again carries them, and they are ignored.
        guard let fields = mapping(node, at: "metadata", known: ["name", "labels", "generation", "annotations"]) else {
            return
        }
        if let name = fields["name"] {
            spec.name = string(name, at: "metadata.name") ?? ""
        } else {
            problem("metadata.name", node, "missing: the model's id, as its telemetry names it")
        }
        if let labels = fields["labels"] { spec.labels = self.labels(labels, at: "metadata.labels") }
    }

    private mutating func readModel(_ node: Node, into spec: inout Infranaut_V1_ModelSpec) {
        let known = [
            "task", "columns", "features", "segments", "window", "reference", "drift", "retention", "performance",
            "alerts",
        ]
        guard let fields = mapping(node, at: "spec", known: known) else { return }
        if let task = fields["task"] {
            spec.task =
                choice(
                    task, at: "spec.task",
                    [
                        "binary-classification": .binaryClassification,
                        "multiclass-classification": .multiclassClassification,
                        "regression": .regression,
                    ]) ?? .unspecified
        }
        if let columns = fields["columns"],
            let roles = mapping(
                columns, at: "spec.columns", known: ["id", "timestamp", "prediction", "label", "version"])
        {
            spec.columns = .with { c in
                if let node = roles["id"] { c.id = string(node, at: "spec.columns.id") ?? "" }
                if let node = roles["timestamp"] { c.timestamp = string(node, at: "spec.columns.timestamp") ?? "" }
                if let node = roles["prediction"] { c.prediction = string(node, at: "spec.columns.prediction") ?? "" }
                if let node = roles["label"] { c.label = string(node, at: "spec.columns.label") ?? "" }
                if let node = roles["version"] { c.version = string(node, at: "spec.columns.version") ?? "" }
            }
        }
        if let features = fields["features"], let items = list(features, at: "spec.features") {
            for (index, item) in items.enumerated() { spec.features.append(readFeature(item, index: index)) }
        }
        if let segments = fields["segments"], let items = list(segments, at: "spec.segments") {
            for (index, item) in items.enumerated() {
                let path = "spec.segments[\(index)]"
                lines[path] = item.mark?.line
                spec.segments.append(string(item, at: path) ?? "")
            }
        }
        if let window = fields["window"],
            let parts = mapping(window, at: "spec.window", known: ["size", "lateness"])
        {
            spec.window = .with { w in
                if let node = parts["size"] { w.sizeMs = duration(node, at: "spec.window.size") ?? 0 }
                if let node = parts["lateness"] { w.latenessMs = duration(node, at: "spec.window.lateness") ?? 0 }
            }
        }
        if let reference = fields["reference"],
            let parts = mapping(reference, at: "spec.reference", known: ["from", "rows"])
        {
            spec.reference = .with { r in
                if let node = parts["from"] {
                    r.policy =
                        choice(
                            node, at: "spec.reference.from",
                            ["upload": .upload, "first-rows": .firstRows, "previous-window": .previousWindow])
                        ?? .unspecified
                }
                if let node = parts["rows"] { r.rows = count(node, at: "spec.reference.rows") ?? 0 }
            }
        }
        if let drift = fields["drift"] { readDrift(drift, into: &spec) }
        if let alerts = fields["alerts"] { readAlerts(alerts, into: &spec) }
        if let performance = fields["performance"],
            let parts = mapping(performance, at: "spec.performance", known: ["threshold", "classes"])
        {
            spec.performance = .with { p in
                if let node = parts["threshold"] { p.threshold = number(node, at: "spec.performance.threshold") ?? 0 }
                if let node = parts["classes"], let items = list(node, at: "spec.performance.classes") {
                    for (index, item) in items.enumerated() {
                        let path = "spec.performance.classes[\(index)]"
                        lines[path] = item.mark?.line
                        p.classes.append(string(item, at: path) ?? "")
                    }
                }
            }
        }
        if let retention = fields["retention"],
            let parts = mapping(retention, at: "spec.retention", known: ["windows", "predictions"])
        {
            spec.retention = .with { r in
                if let node = parts["windows"] { r.windowsMs = duration(node, at: "spec.retention.windows") ?? 0 }
                if let node = parts["predictions"] {
                    r.predictionsMs = duration(node, at: "spec.retention.predictions") ?? 0
                }
            }
        }
    }

    private mutating func readFeature(_ node: Node, index: Int) -> Infranaut_V1_FeatureSpec {
        let path = "spec.features[\(index)]"
        lines[path] = node.mark?.line
        var feature = Infranaut_V1_FeatureSpec()
        guard let fields = mapping(node, at: path, known: ["name", "type", "range"]) else { return feature }
        if let name = fields["name"] {
            feature.name = string(name, at: "\(path).name") ?? ""
        } else {
            problem("\(path).name", node, "missing")
        }
        if let type = fields["type"] {
            feature.type =
                choice(
                    type, at: "\(path).type",
                    ["numeric": .numeric, "categorical": .categorical, "boolean": .boolean]) ?? .unspecified
        } else {
            problem("\(path).type", node, "missing; one of numeric, categorical, boolean")
        }
        if let range = fields["range"], let bounds = list(range, at: "\(path).range") {
            guard bounds.count == 2 else {
                problem("\(path).range", range, "expected [min, max], found \(bounds.count) values")
                return feature
            }
            if let low = number(bounds[0], at: "\(path).range[0]"), let high = number(bounds[1], at: "\(path).range[1]")
            {
                feature.bounded = true
                feature.min = low
                feature.max = high
            }
        }
        return feature
    }

    private mutating func readDrift(_ node: Node, into spec: inout Infranaut_V1_ModelSpec) {
        guard
            let parts = mapping(
                node, at: "spec.drift", known: ["method", "threshold", "per_feature", "dataset_share"])
        else { return }
        if let method = parts["method"] { spec.drift.method = string(method, at: "spec.drift.method") ?? "" }
        if let threshold = parts["threshold"] {
            spec.drift.threshold = number(threshold, at: "spec.drift.threshold") ?? 0
        }
        if let share = parts["dataset_share"] {
            spec.drift.datasetShare = number(share, at: "spec.drift.dataset_share") ?? 0
        }
        guard let perFeature = parts["per_feature"] else { return }
        guard case .mapping(let entries) = perFeature else {
            problem("spec.drift.per_feature", perFeature, "expected a mapping of feature name to {method, threshold}")
            return
        }
        for (key, value) in entries {
            let name = key.string ?? ""
            let path = "spec.drift.per_feature.\(name)"
            lines[path] = key.mark?.line
            guard let fields = mapping(value, at: path, known: ["method", "threshold"]) else { continue }
            var override = Infranaut_V1_FeatureDriftSpec()
            if let method = fields["method"] { override.method = string(method, at: "\(path).method") ?? "" }
            if let threshold = fields["threshold"] {
                override.threshold = number(threshold, at: "\(path).threshold") ?? 0
            }
            spec.drift.perFeature[name] = override
        }
    }
}
