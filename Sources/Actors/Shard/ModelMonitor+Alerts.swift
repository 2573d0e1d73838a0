import Foundation
import Monitoring
import Wire

/// The alert rules a spec gives a model, and its alerts as `alerts` lists them (docs/alerting.md).
extension ModelMonitor {
    /// The spec's rules in order, then the defaults it neither replaces nor disables: those the
    /// leader stamped into the spec from its node's table, else the built-in ones. A rule the node
    /// cannot read (a metric it does not know) is left out: the spec was checked on apply, so only
    /// a spec from a newer node can hold one.
    static func alertRules(_ spec: Infranaut_V1_ModelSpec) -> [AlertRule] {
        let defaults = spec.defaultsStamped ? rules(spec.defaultAlerts) : AlertRule.defaults
        return AlertRule.effective(
            rules(spec.alerts), disabled: Set(spec.alerts.filter(\.disabled).map(\.name)), defaults: defaults)
    }

    /// The built-in default rules as a spec writes them, for stamping into specs.
    static let builtInDefaults: [Infranaut_V1_AlertRule] = AlertRule.defaults.map(wire)

    /// `rule` as a spec writes it (the inverse of ``rules(_:)``).
    static func wire(_ rule: AlertRule) -> Infranaut_V1_AlertRule {
        .with {
            $0.name = rule.name
            $0.metric = rule.metric.name
            $0.feature = rule.feature ?? ""
            switch rule.condition {
            case .above(let v): $0.condition = .above(v)
            case .below(let v): $0.condition = .below(v)
            case .anomaly(let v): $0.condition = .anomaly(v)
            case .changePoint(let v): $0.condition = .changePoint(v)
            }
            $0.forWindows = UInt32(clamping: rule.forWindows)
            $0.severity = Infranaut_V1_AlertSeverity(rawValue: Int(rule.severity.rawValue)) ?? .warning
            $0.labels = Dictionary(rule.labels.map { ($0.key, $0.value) }) { first, _ in first }
            $0.summary = rule.summary
            $0.runbookURL = rule.runbookURL
            $0.notify = rule.notify
            $0.perSegment = rule.perSegment
        }
    }

    /// The rules of `specified` the node can read, the disabled ones left out.
    static func rules(_ specified: [Infranaut_V1_AlertRule]) -> [AlertRule] {
        specified.filter { !$0.disabled }.compactMap { rule -> AlertRule? in
            guard let metric = AlertMetric(name: rule.metric), let condition = rule.condition else { return nil }
            let judged: AlertCondition =
                switch condition {
                case .above(let v): .above(v)
                case .below(let v): .below(v)
                case .anomaly(let v): .anomaly(v)
                case .changePoint(let v): .changePoint(v)
                }
            return AlertRule(
                name: rule.name, metric: metric, feature: rule.feature.isEmpty ? nil : rule.feature, condition: judged,
                forWindows: Int(rule.forWindows),
                severity: AlertSeverity(rawValue: UInt8(rule.severity.rawValue)) ?? .warning,
                labels: rule.labels, summary: rule.summary, runbookURL: rule.runbookURL, notify: rule.notify,
                perSegment: rule.perSegment)
        }
    }

    /// What the rules read besides the window: the labelled reference and the binary threshold.
    func alertContext(_ key: WindowKey) -> AlertBook.Context {
        var threshold: Double?
        if case .binary(let t)? = windows.performanceTask { threshold = t }
        return AlertBook.Context(
            model: model, labelledReference: windows.labelledReference(for: key), threshold: threshold)
    }

    /// The alerts in `state` (unspecified: pending and firing), with the resolved ones kept when
    /// asked, each with its rule's details as the spec now gives them.
    func alertInfos(state: Infranaut_V1_AlertState, includeResolved: Bool) -> [Infranaut_V1_AlertInfo] {
        var listed = alerts.active
        if includeResolved || state == .resolved { listed += alerts.resolved.reversed() }
        let byName = Dictionary(rules.map { ($0.name, $0) }) { first, _ in first }
        return listed.map { Self.info($0, model: model, rule: byName[$0.rule]) }.filter {
            state == .unspecified ? ($0.state != .resolved || includeResolved) : $0.state == state
        }
    }

    /// A change as the coordinators receive it: the alert right after it, with its rule's details.
    func info(of change: AlertBook.Change) -> Infranaut_V1_AlertInfo {
        Self.info(change.alert, model: model, rule: rules.first { $0.name == change.alert.rule })
    }

    /// The event that carries a change to every coordinator: its id is the same on every replica
    /// and every retry, so coordinators keep it once.
    static func event(_ info: Infranaut_V1_AlertInfo) throws -> Infranaut_V1_ClusterEvent {
        try .with {
            $0.id = eventID(info)
            $0.kind = alertEventKind
            $0.payload = try info.serializedData()
        }
    }

    static let alertEventKind = "alert"

    static func eventID(_ info: Infranaut_V1_AlertInfo) -> String { "alert/\(info.fingerprint)/\(info.sequence)" }

    static func info(_ alert: AlertBook.Alert, model: String, rule: AlertRule?) -> Infranaut_V1_AlertInfo {
        let segment = alert.series.segment.map(Self.segmentText) ?? ""
        return .with {
            $0.fingerprint = alert.fingerprint
            $0.modelID = model
            $0.version = alert.series.version
            $0.segment = segment
            $0.rule = alert.rule
            $0.state =
                switch alert.state {
                case .pending: .pending
                case .firing: .firing
                case .resolved, .inactive: .resolved
                }
            $0.severity = Infranaut_V1_AlertSeverity(rawValue: Int(alert.severity.rawValue)) ?? .warning
            $0.feature = alert.feature
            $0.value = alert.value
            $0.windowStartUnixMs = alert.windowStartMs
            $0.windowEndUnixMs = alert.windowEndMs
            $0.sinceUnixMs = alert.sinceMs
            $0.changedUnixMs = alert.changedMs
            $0.sequence = alert.sequence
            $0.fired = alert.fired
            guard let rule else { return }
            $0.metric = rule.metric.name
            $0.threshold = rule.condition.threshold
            $0.labels = Dictionary(rule.labels.map { ($0.key, $0.value) }) { first, _ in first }
            $0.runbookURL = rule.runbookURL
            $0.notify = rule.notify
            let fields: [String: String] = [
                "model": model, "version": alert.series.version, "segment": segment, "rule": rule.name,
                "metric": rule.metric.name, "feature": alert.feature, "value": Self.short(alert.value),
                "threshold": Self.short(rule.condition.threshold), "window": Self.rfc3339(alert.windowStartMs),
            ]
            $0.summary = Self.render(rule.summary, fields)
        }
    }

    /// `{{name}}` replaced by its field; an unknown name is left as written.
    static func render(_ template: String, _ fields: [String: String]) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                rest = rest[open.lowerBound...]
                break
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            out += fields[name] ?? String(rest[open.lowerBound..<close.upperBound])
            rest = rest[close.upperBound...]
        }
        return out + rest
    }

    static func segmentText(_ segment: Segment) -> String {
        switch segment.value {
        case .value(let v): "\(segment.column)=\(v)"
        case .missing: "\(segment.column)=(missing)"
        case .other: "\(segment.column)=(other)"
        }
    }

    static func short(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        return String(format: "%.4g", x)
    }

    static func rfc3339(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
