import Foundation
import Wire

/// The bodies a notice is sent as (docs/alerting.md, "Formats"): the Prometheus Alertmanager
/// webhook JSON (version 4) for webhooks, an incoming-webhook message for Slack, and PagerDuty
/// Events API v2 events, one per alert.
enum NotificationFormats {
    /// Alertmanager's "zero" time, which its receivers read as "not ended".
    static let notEnded = "0001-01-01T00:00:00Z"

    struct Webhook: Encodable {
        var version = "4"
        var groupKey: String
        var truncatedAlerts = 0
        var status: String
        var receiver: String
        var groupLabels: [String: String]
        var commonLabels: [String: String]
        var commonAnnotations: [String: String]
        var externalURL = ""
        var alerts: [Alert]
    }

    struct Alert: Encodable {
        var status: String
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL = ""
        var fingerprint: String
    }

    static func labels(_ info: Infranaut_V1_AlertInfo) -> [String: String] {
        var labels = info.labels
        labels["alertname"] = info.rule
        labels["model"] = info.modelID
        labels["severity"] = severity(info.severity)
        if !info.version.isEmpty { labels["version"] = info.version }
        if !info.segment.isEmpty { labels["segment"] = info.segment }
        if !info.feature.isEmpty { labels["feature"] = info.feature }
        return labels
    }

    static func annotations(_ info: Infranaut_V1_AlertInfo) -> [String: String] {
        var annotations = [
            "summary": info.summary.isEmpty ? "\(info.modelID): \(info.rule)" : info.summary,
            "metric": info.metric, "value": ModelMonitor.short(info.value),
            "threshold": ModelMonitor.short(info.threshold),
            "window_start": ModelMonitor.rfc3339(info.windowStartUnixMs),
            "window_end": ModelMonitor.rfc3339(info.windowEndUnixMs),
        ]
        if !info.runbookURL.isEmpty { annotations["runbook_url"] = info.runbookURL }
        if !info.hints.text.isEmpty { annotations["hints"] = info.hints.text }
        return annotations
    }

    static func severity(_ severity: Infranaut_V1_AlertSeverity) -> String {
        switch severity {
        case .info: "info"
        case .critical: "critical"
        default: "warning"
        }
    }

    static func webhook(_ notice: NotificationLedger.Notice) throws -> [UInt8] {
        let status = notice.firing ? "firing" : "resolved"
        let alerts = notice.alerts.map { info in
            Alert(
                status: status, labels: labels(info), annotations: annotations(info),
                startsAt: ModelMonitor.rfc3339(info.sinceUnixMs),
                endsAt: notice.firing ? notEnded : ModelMonitor.rfc3339(info.changedUnixMs),
                fingerprint: info.fingerprint)
        }
        func common(_ maps: [[String: String]]) -> [String: String] {
            guard var shared = maps.first else { return [:] }
            for map in maps.dropFirst() { shared = shared.filter { map[$0.key] == $0.value } }
            return shared
        }
        let body = Webhook(
            groupKey: notice.dedupKey, status: status, receiver: notice.channel.name,
            groupLabels: ["model": notice.alerts[0].modelID], commonLabels: common(alerts.map(\.labels)),
            commonAnnotations: common(alerts.map(\.annotations)), alerts: alerts)
        return try encode(body)
    }

    struct Slack: Encodable {
        var text: String
    }

    static func slack(_ notice: NotificationLedger.Notice) throws -> [UInt8] {
        let first = notice.alerts[0]
        var lines = [
            "[\(notice.firing ? "FIRING" : "RESOLVED"):\(notice.alerts.count)] \(first.modelID), window from \(ModelMonitor.rfc3339(first.windowStartUnixMs))"
                + (notice.repetition == 0 ? "" : " (still firing since \(ModelMonitor.rfc3339(first.changedUnixMs)))")
        ]
        for info in notice.alerts {
            var line = "• \(info.rule) (\(severity(info.severity))): "
            line += info.summary.isEmpty ? "\(info.metric) \(ModelMonitor.short(info.value))" : info.summary
            if !info.hints.text.isEmpty { line += " — \(info.hints.text)" }
            if !info.runbookURL.isEmpty { line += " <\(info.runbookURL)|runbook>" }
            lines.append(line)
        }
        return try encode(Slack(text: lines.joined(separator: "\n")))
    }

    struct PagerDutyEvent: Encodable {
        var routing_key: String
        var event_action: String
        var dedup_key: String
        var payload: Payload?

        struct Payload: Encodable {
            var summary: String
            var source: String
            var severity: String
            var timestamp: String
            var custom_details: [String: String]
        }
    }

    /// One event per alert: PagerDuty deduplicates by alert (the fingerprint), not by group.
    static func pagerDuty(_ notice: NotificationLedger.Notice, routingKey: String) throws -> [[UInt8]] {
        try notice.alerts.map { info in
            let summary = info.summary.isEmpty ? "\(info.modelID): \(info.rule)" : info.summary
            return try encode(
                PagerDutyEvent(
                    routing_key: routingKey, event_action: notice.firing ? "trigger" : "resolve",
                    dedup_key: info.fingerprint,
                    payload: .init(
                        // PagerDuty caps the summary at 1024 characters.
                        summary: String(summary.prefix(1024)), source: "infranaut/\(info.modelID)",
                        severity: severity(info.severity), timestamp: ModelMonitor.rfc3339(info.changedUnixMs),
                        custom_details: labels(info).merging(annotations(info)) { label, _ in label })))
        }
    }

    private static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }
}
