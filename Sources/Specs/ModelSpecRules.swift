public import Wire

/// Limits a spec is checked against; a node passes its own (`--max-features-per-model`, the name
/// limit of telemetry).
public struct SpecLimits: Sendable {
    public var maxFeatures = 1_000
    public var maxNameBytes = 256
    public var maxSegments = 3
    public var maxLabels = 64
    /// Encoded size of a spec. Default 256 KiB (1,000 features with ranges take about 40 KiB).
    public var maxSpecBytes = 256 << 10
    /// The names of the default rules a spec may turn off (`disabled: true`); nil leaves that
    /// unchecked, as the CLI does: only the node knows its defaults (docs/alerting.md).
    public var defaultRuleNames: Set<String>?

    public init() {}
}

/// The rules every model spec must meet, checked on the struct (so a node checks a spec that did
/// not come from YAML the same way). Each problem names its path; none stops the check.
public enum ModelSpecRules {
    public static let driftMethods = ["auto", "ks", "psi", "js", "wasserstein", "chi2", "hellinger"]
    static let pValueMethods: Set<String> = ["ks", "chi2"]
    static let second: UInt64 = 1_000
    static let day: UInt64 = 86_400_000
    public static let maxWindow = 31 * day
    public static let maxRetention = 3_650 * day
    public static let maxReferenceRows: UInt64 = 100_000_000
    /// Classes a multiclass spec may list: every window and segment keeps a K × K confusion matrix.
    public static let maxClasses = 50

    public static func problems(of spec: Infranaut_V1_ModelSpec, limits: SpecLimits = SpecLimits())
        -> [SpecProblem]
    {
        var found: [SpecProblem] = []
        func check(_ ok: Bool, _ path: String, _ message: @autoclosure () -> String) {
            if !ok { found.append(SpecProblem(path, message())) }
        }
        // Every spec is replicated, checkpointed with its model and sent back by get: bounded.
        let bytes = (try? spec.serializedBytes() as [UInt8])?.count ?? Int.max
        check(bytes <= limits.maxSpecBytes, "spec", "\(bytes) bytes encoded; the limit is \(limits.maxSpecBytes)")
        check(spec.unknownFields.data.isEmpty, "spec", "carries fields this node does not know; nothing was applied")
        check(
            spec.drift.perFeature.count <= max(limits.maxFeatures, 1), "spec.drift.per_feature",
            "\(spec.drift.perFeature.count) entries; the limit is \(limits.maxFeatures)")
        for name in spec.drift.perFeature.keys.sorted() where name.isEmpty || name.utf8.count > limits.maxNameBytes {
            found.append(
                SpecProblem("spec.drift.per_feature", "a feature name is empty or over \(limits.maxNameBytes) bytes"))
        }
        check(!spec.name.isEmpty, "metadata.name", "empty: give the model's id, as its telemetry names it")
        check(
            spec.name.utf8.count <= limits.maxNameBytes, "metadata.name",
            "\(spec.name.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
        check(
            spec.labels.count <= limits.maxLabels, "metadata.labels",
            "\(spec.labels.count) labels; the limit is \(limits.maxLabels)")
        for (key, value) in spec.labels.sorted(by: { $0.key < $1.key }) {
            check(
                !key.isEmpty && key.utf8.count <= 63 && key.allSatisfy(Self.isLabelKeyCharacter),
                "metadata.labels.\(key)", "a label key is 1 to 63 characters of letters, digits, '.', '_', '-' or '/'")
            check(value.utf8.count <= 256, "metadata.labels.\(key)", "the value is over 256 bytes")
        }

        // Columns with a role are not features, and no column plays two roles.
        let roles = [
            ("id", spec.columns.id), ("timestamp", spec.columns.timestamp), ("prediction", spec.columns.prediction),
            ("label", spec.columns.label), ("version", spec.columns.version),
        ].filter { !$0.1.isEmpty }
        var roleOf: [String: String] = [:]
        for (role, column) in roles {
            check(
                column.utf8.count <= limits.maxNameBytes, "spec.columns.\(role)",
                "\(column.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
            if let other = roleOf[column] {
                found.append(SpecProblem("spec.columns.\(role)", "\"\(column)\" is already the \(other) column"))
            } else {
                roleOf[column] = role
            }
        }

        check(
            spec.features.count <= limits.maxFeatures, "spec.features",
            "\(spec.features.count) features; the limit is \(limits.maxFeatures) (--max-features-per-model)")
        var typeOf: [String: Infranaut_V1_SpecFeatureType] = [:]
        for (index, feature) in spec.features.enumerated() {
            let path = "spec.features[\(index)]"
            if feature.name.isEmpty {
                found.append(SpecProblem("\(path).name", "empty"))
            } else if typeOf[feature.name] != nil {
                found.append(SpecProblem("\(path).name", "\"\(feature.name)\" is declared twice"))
            } else if let role = roleOf[feature.name] {
                found.append(SpecProblem("\(path).name", "\"\(feature.name)\" is the \(role) column, not a feature"))
            } else {
                check(
                    feature.name.utf8.count <= limits.maxNameBytes, "\(path).name",
                    "\(feature.name.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
                typeOf[feature.name] = feature.type
            }
            check(
                feature.type == .numeric || feature.type == .categorical || feature.type == .boolean,
                "\(path).type", "missing; one of numeric, categorical, boolean")
            if feature.bounded {
                if feature.type != .numeric {
                    found.append(SpecProblem("\(path).range", "only numeric features have a range"))
                } else if !feature.min.isFinite || !feature.max.isFinite || feature.min > feature.max {
                    found.append(
                        SpecProblem(
                            "\(path).range", "[\(feature.min), \(feature.max)] is not [min, max] with min ≤ max"))
                }
            }
        }

        check(
            spec.segments.count <= limits.maxSegments, "spec.segments",
            "\(spec.segments.count) segment columns; the limit is \(limits.maxSegments)")
        var segmentsSeen: Set<String> = []
        for (index, segment) in spec.segments.enumerated() {
            let path = "spec.segments[\(index)]"
            if !segmentsSeen.insert(segment).inserted {
                found.append(SpecProblem(path, "\"\(segment)\" is listed twice"))
            } else if let type = typeOf[segment] {
                check(
                    type == .categorical || type == .boolean, path,
                    "\"\(segment)\" is numeric; segments split by categorical or boolean features")
            } else {
                found.append(SpecProblem(path, "\"\(segment)\" is not a declared feature of spec.features"))
            }
        }

        if spec.hasWindow {
            check(
                (second...maxWindow).contains(spec.window.sizeMs), "spec.window.size",
                "\(SpecDuration.text(spec.window.sizeMs)) is outside 1s to 31d")
            check(
                spec.window.latenessMs <= maxWindow, "spec.window.lateness",
                "\(SpecDuration.text(spec.window.latenessMs)) is over 31d")
        }

        if spec.hasReference {
            switch spec.reference.policy {
            case .firstRows:
                check(
                    (1...maxReferenceRows).contains(spec.reference.rows), "spec.reference.rows",
                    "first-rows needs rows: 1 to \(maxReferenceRows)")
            case .upload, .previousWindow:
                check(
                    spec.reference.rows == 0, "spec.reference.rows", "rows goes only with from: first-rows")
            default:
                found.append(SpecProblem("spec.reference.from", "missing; one of upload, first-rows, previous-window"))
            }
        }

        if spec.hasDrift {
            found += driftProblems(
                method: spec.drift.method, threshold: spec.drift.threshold, at: "spec.drift")
            let share = spec.drift.datasetShare
            check(
                share == 0 || (share > 0 && share <= 1), "spec.drift.dataset_share", "\(share) is outside (0, 1]")
            for (name, override) in spec.drift.perFeature.sorted(by: { $0.key < $1.key }) {
                let path = "spec.drift.per_feature.\(name)"
                if !spec.features.isEmpty && typeOf[name] == nil {
                    found.append(SpecProblem(path, "\"\(name)\" is not a declared feature of spec.features"))
                }
                found += driftProblems(method: override.method, threshold: override.threshold, at: path)
            }
        }

        if spec.hasPerformance {
            let p = spec.performance
            if p.threshold != 0 {
                check(
                    spec.task == .binaryClassification, "spec.performance.threshold",
                    "goes only with task: binary-classification")
                check(
                    p.threshold > 0 && p.threshold <= 1, "spec.performance.threshold",
                    "\(p.threshold) is outside (0, 1]")
            }
            if !p.classes.isEmpty {
                check(
                    spec.task == .multiclassClassification, "spec.performance.classes",
                    "goes only with task: multiclass-classification")
                check(
                    (2...maxClasses).contains(p.classes.count), "spec.performance.classes",
                    "\(p.classes.count) classes; between 2 and \(maxClasses)")
                var seen: Set<String> = []
                for (index, name) in p.classes.enumerated() {
                    let path = "spec.performance.classes[\(index)]"
                    if name.isEmpty || name.utf8.count > limits.maxNameBytes {
                        found.append(SpecProblem(path, "a class name is empty or over \(limits.maxNameBytes) bytes"))
                    } else if !seen.insert(name).inserted {
                        found.append(SpecProblem(path, "\"\(name)\" is listed twice"))
                    }
                }
            }
        }

        if spec.hasRetention && spec.retention.windowsMs != 0 {
            check(
                (second...maxRetention).contains(spec.retention.windowsMs), "spec.retention.windows",
                "\(SpecDuration.text(spec.retention.windowsMs)) is outside 1s to 3650d")
        }
        if spec.hasRetention && spec.retention.predictionsMs != 0 {
            check(
                (3_600_000...365 * 86_400_000).contains(spec.retention.predictionsMs), "spec.retention.predictions",
                "\(SpecDuration.text(spec.retention.predictionsMs)) is outside 1h to 365d")
        }
        found += alertProblems(spec, features: Set(spec.features.map(\.name)), defaults: limits.defaultRuleNames)
        return found
    }

    static func driftProblems(method: String, threshold: Double, at path: String) -> [SpecProblem] {
        var found: [SpecProblem] = []
        if !method.isEmpty && !driftMethods.contains(method) {
            found.append(
                SpecProblem("\(path).method", "\"\(method)\" is not one of \(driftMethods.joined(separator: ", "))"))
        }
        if threshold != 0 {
            if !threshold.isFinite || threshold < 0 {
                found.append(SpecProblem("\(path).threshold", "\(threshold) is not a number ≥ 0"))
            } else if pValueMethods.contains(method) && threshold >= 1 {
                found.append(SpecProblem("\(path).threshold", "\(threshold) is not a p-value below 1 (\(method))"))
            }
        }
        return found
    }

    static func isLabelKeyCharacter(_ c: Character) -> Bool {
        c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-" || c == "/")
    }
}
