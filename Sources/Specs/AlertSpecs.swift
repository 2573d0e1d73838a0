import Monitoring
public import Wire
import Yams

extension SpecReader {
    /// A `kind: AlertDefaults` document: `spec.alerts`, the rules every model a node accepts
    /// inherits (docs/alerting.md, "Cluster defaults"); `metadata` is optional.
    mutating func alertDefaults(_ top: [String: Node], document: Node, line: Int) -> SpecObject? {
        if let metadata = top["metadata"] { _ = mapping(metadata, at: "metadata", known: ["name"]) }
        var holder = Infranaut_V1_ModelSpec()
        if let body = top["spec"], let fields = mapping(body, at: "spec", known: ["alerts"]) {
            if let alerts = fields["alerts"] {
                readAlerts(alerts, into: &holder)
            } else {
                problem("spec.alerts", body, "missing; the list of default rules (it may be empty: [])")
            }
        } else if top["spec"] == nil {
            problem("spec", document, "missing; AlertDefaults needs spec.alerts")
        }
        return SpecObject(body: .alertDefaults(holder.alerts), lines: lines, line: line)
    }

    /// `spec.alerts`: a list of rules (docs/alerting.md).
    mutating func readAlerts(_ node: Node, into spec: inout Infranaut_V1_ModelSpec) {
        guard let items = list(node, at: "spec.alerts") else { return }
        for (index, item) in items.enumerated() {
            let path = "spec.alerts[\(index)]"
            lines[path] = item.mark?.line
            let known = [
                "name", "metric", "feature", "condition", "for", "severity", "labels", "summary", "runbook_url",
                "notify", "per_segment", "disabled",
            ]
            guard let fields = mapping(item, at: path, known: known) else { continue }
            var rule = Infranaut_V1_AlertRule()
            if let name = fields["name"] {
                rule.name = string(name, at: "\(path).name") ?? ""
            } else {
                problem("\(path).name", item, "missing")
            }
            if let metric = fields["metric"] { rule.metric = string(metric, at: "\(path).metric") ?? "" }
            if let feature = fields["feature"] { rule.feature = string(feature, at: "\(path).feature") ?? "" }
            if let condition = fields["condition"] { readCondition(condition, at: "\(path).condition", into: &rule) }
            if let count = fields["for"] {
                rule.forWindows = UInt32(clamping: self.count(count, at: "\(path).for") ?? 0)
            }
            if let severity = fields["severity"] {
                rule.severity =
                    choice(
                        severity, at: "\(path).severity",
                        ["info": .info, "warning": .warning, "critical": .critical]) ?? .unspecified
            }
            if let labels = fields["labels"] { rule.labels = self.labels(labels, at: "\(path).labels") }
            if let summary = fields["summary"] { rule.summary = string(summary, at: "\(path).summary") ?? "" }
            if let url = fields["runbook_url"] { rule.runbookURL = string(url, at: "\(path).runbook_url") ?? "" }
            if let notify = fields["notify"], let channels = list(notify, at: "\(path).notify") {
                for (i, channel) in channels.enumerated() {
                    rule.notify.append(string(channel, at: "\(path).notify[\(i)]") ?? "")
                }
            }
            if let flag = fields["per_segment"] { rule.perSegment = bool(flag, at: "\(path).per_segment") ?? false }
            if let flag = fields["disabled"] { rule.disabled = bool(flag, at: "\(path).disabled") ?? false }
            spec.alerts.append(rule)
        }
    }

    private mutating func readCondition(_ node: Node, at path: String, into rule: inout Infranaut_V1_AlertRule) {
        guard let parts = mapping(node, at: path, known: ["above", "below", "anomaly", "change_point"]) else {
            return
        }
        guard parts.count == 1, let (key, value) = parts.first else {
            problem(path, node, "give exactly one of above, below, anomaly, change_point")
            return
        }
        guard let number = number(value, at: "\(path).\(key)") else { return }
        switch key {
        case "above": rule.condition = .above(number)
        case "below": rule.condition = .below(number)
        case "anomaly": rule.condition = .anomaly(number)
        default: rule.condition = .changePoint(number)
        }
    }

    mutating func bool(_ node: Node, at path: String) -> Bool? {
        if case .scalar = node, let value = node.bool { return value }
        problem(path, node, "expected true or false, found \(Self.shape(of: node))")
        return nil
    }
}

extension ModelSpecRules {
    public static let maxAlertRules = 100
    static let maxAlertLabels = 32
    static let maxAlertChannels = 16

    /// The problems of `spec.alerts`; `features` are the declared features (empty: none declared).
    /// `defaults`: the names a rule may turn off (nil: not checked). `forDefaults`: the rules are a
    /// table of defaults, read for any model: no task or feature to check them against, and none
    /// may be `disabled`.
    static func alertProblems(
        _ spec: Infranaut_V1_ModelSpec, features: Set<String>, defaults: Set<String>?, forDefaults: Bool = false
    ) -> [SpecProblem] {
        var found: [SpecProblem] = []
        func check(_ ok: Bool, _ path: String, _ message: @autoclosure () -> String) {
            if !ok { found.append(SpecProblem(path, message())) }
        }
        check(
            spec.alerts.count <= maxAlertRules, "spec.alerts",
            "\(spec.alerts.count) rules; the limit is \(maxAlertRules)")
        var names: Set<String> = []
        for (index, rule) in spec.alerts.prefix(maxAlertRules).enumerated() {
            let path = "spec.alerts[\(index)]"
            if !isRuleName(rule.name) {
                found.append(
                    SpecProblem("\(path).name", "a rule name is 1 to 63 characters of letters, digits, '.', '_' or '-'")
                )
            } else if !names.insert(rule.name).inserted {
                found.append(SpecProblem("\(path).name", "\"\(rule.name)\" is given twice"))
            }
            if rule.disabled {
                check(!forDefaults, "\(path).disabled", "a table of defaults lists only the rules it gives")
                if let defaults {
                    check(
                        defaults.contains(rule.name), "\(path).disabled",
                        "there is no default rule \"\(rule.name)\" to turn off; the defaults are \(defaults.sorted().joined(separator: ", "))"
                    )
                }
                check(
                    rule.metric.isEmpty && rule.condition == nil, "\(path).disabled",
                    "a disabled rule has only its name")
                continue
            }
            guard let metric = AlertMetric(name: rule.metric) else {
                found.append(
                    SpecProblem(
                        "\(path).metric",
                        rule.metric.isEmpty
                            ? "missing; one of \(AlertMetric.names.joined(separator: ", "))"
                            : "\"\(rule.metric)\" is not one of \(AlertMetric.names.joined(separator: ", "))"))
                continue
            }
            if !rule.feature.isEmpty {
                if !metric.isPerFeature {
                    found.append(SpecProblem("\(path).feature", "\(rule.metric) is not read per feature"))
                } else if !features.isEmpty && !features.contains(rule.feature) {
                    found.append(
                        SpecProblem("\(path).feature", "\"\(rule.feature)\" is not a declared feature of spec.features")
                    )
                }
            }
            if case .performance = metric, !forDefaults {
                check(spec.task != .unspecified, "\(path).metric", "\(rule.metric) needs the spec's task")
            }
            if metric == .performanceDrop, !forDefaults {
                check(
                    spec.task == .binaryClassification, "\(path).metric",
                    "performance_drop goes only with task: binary-classification")
            }
            if metric == .idleWindows {
                // Judged by time, not per window (docs/alerting.md, "Traffic stopping").
                if case .above(let v)? = rule.condition {
                    check(
                        v > 0 && v <= 10_000, "\(path).condition.above",
                        "\(v) is not a number of windows in (0, 10000]")
                } else if rule.condition != nil {
                    found.append(SpecProblem("\(path).condition", "idle_windows takes only above: a number of windows"))
                }
                check(rule.forWindows <= 1, "\(path).for", "idle_windows fires when it holds; leave for out")
                check(!rule.perSegment, "\(path).per_segment", "idle_windows is judged for the whole model only")
            }
            switch rule.condition {
            case nil:
                found.append(SpecProblem("\(path).condition", "missing; one of above, below, anomaly, change_point"))
            case .above(let v)?, .below(let v)?:
                check(v.isFinite, "\(path).condition", "\(v) is not a finite number")
            case .anomaly(let v)?:
                check(v.isFinite && v > 0, "\(path).condition.anomaly", "\(v) is not a score > 0 (3.5 is usual)")
            case .changePoint(let v)?:
                check(v > 0 && v < 1, "\(path).condition.change_point", "\(v) is not a confidence δ in (0, 1)")
            }
            check(rule.forWindows <= 1_000, "\(path).for", "\(rule.forWindows) windows; the limit is 1000")
            check(
                rule.labels.count <= maxAlertLabels, "\(path).labels",
                "\(rule.labels.count) labels; the limit is \(maxAlertLabels)")
            for (key, value) in rule.labels.sorted(by: { $0.key < $1.key }) {
                check(
                    !key.isEmpty && key.utf8.count <= 63 && key.allSatisfy(isLabelKeyCharacter),
                    "\(path).labels.\(key)",
                    "a label key is 1 to 63 characters of letters, digits, '.', '_', '-' or '/'")
                check(value.utf8.count <= 256, "\(path).labels.\(key)", "the value is over 256 bytes")
            }
            check(rule.summary.utf8.count <= 1_024, "\(path).summary", "over 1024 bytes")
            check(
                rule.runbookURL.isEmpty
                    || ((rule.runbookURL.hasPrefix("http://") || rule.runbookURL.hasPrefix("https://"))
                        && rule.runbookURL.utf8.count <= 2_048),
                "\(path).runbook_url", "an http:// or https:// address of at most 2048 bytes")
            check(
                rule.notify.count <= maxAlertChannels, "\(path).notify",
                "\(rule.notify.count) channels; the limit is \(maxAlertChannels)")
            for (i, channel) in rule.notify.enumerated() where !isRuleName(channel) {
                found.append(
                    SpecProblem(
                        "\(path).notify[\(i)]",
                        "a channel name is 1 to 63 characters of letters, digits, '.', '_' or '-'"
                    ))
            }
            check(
                !rule.perSegment || !spec.segments.isEmpty || forDefaults, "\(path).per_segment",
                "the spec has no segments to judge")
        }
        return found
    }

    /// The problems of a table of default rules (`kind: AlertDefaults`, `start --alert-defaults`),
    /// by the same rules as a spec's, with paths under `spec.alerts`.
    public static func alertDefaultsProblems(_ rules: [Infranaut_V1_AlertRule]) -> [SpecProblem] {
        alertProblems(.with { $0.alerts = rules }, features: [], defaults: nil, forDefaults: true)
    }

    public static func isRuleName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") }
    }
}
