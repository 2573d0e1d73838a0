import ArgumentParser
import Foundation
import Wire

struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts",
        abstract: "The alerts the models' rules raised: pending and firing, and lately resolved ones.",
        discussion: """
            Every model's alerts (gathered from the leaders of all shards), or one model's. Each alert
            is one rule on one series (version, segment) of a model, with a fingerprint that stays the
            same for its whole life. docs/alerting.md explains the rules and the lifecycle.
            """
    )

    @OptionGroup var target: NodeTarget

    @Option(help: "Only this model's alerts.")
    var model: String?

    @Option(help: "Only alerts in this state: pending, firing or resolved.")
    var state: String?

    @Flag(help: "Include alerts resolved lately (each model keeps its newest 100).")
    var includeResolved = false

    @Flag(help: "Print the alerts as JSON.")
    var json = false

    static let states: [String: Infranaut_V1_AlertState] = [
        "pending": .pending, "firing": .firing, "resolved": .resolved,
    ]

    func validate() throws {
        if let state, Self.states[state] == nil {
            throw ValidationError("--state must be one of pending, firing, resolved")
        }
    }

    struct Alert: Encodable {
        var fingerprint: String
        var model: String
        var version: String
        var segment: String?
        var rule: String
        var state: String
        var severity: String
        var metric: String
        var feature: String?
        var value: Double
        var threshold: Double
        var window_start: String
        var window_end: String
        var since: String
        var changed: String
        var sequence: UInt64
        var labels: [String: String]
        var summary: String
        var runbook_url: String?
        var notify: [String]
        var hints: Hints?
    }

    /// The root-cause hints of the alert's window, as `explain` gives them (its first few).
    struct Hints: Encodable {
        var performance: ExplainCommand.Performance?
        var features: [ExplainCommand.Feature]
        var segment_basis: String?
        var segments: [ExplainCommand.Segment]
    }

    struct Listing: Encodable {
        var alerts: [Alert]
        var unreachable: [String]
        var leaderless_shards: [UInt32]
    }

    func run() async throws {
        let reply = try await target.ask(
            .alerts(
                .with {
                    $0.modelID = model ?? ""
                    $0.state = state.flatMap { Self.states[$0] } ?? .unspecified
                    $0.includeResolved = includeResolved
                })
        ).alerts
        let listing = Listing(
            alerts: reply.alerts.map(Self.alert), unreachable: reply.unreachable,
            leaderless_shards: reply.leaderlessShards)
        if json {
            try printJSON(listing)
        } else if listing.alerts.isEmpty {
            print(includeResolved || state != nil ? "no alerts" : "no pending or firing alerts")
        } else {
            var rows = [
                ["MODEL", "VERSION", "SEGMENT", "RULE", "STATE", "SEVERITY", "VALUE", "WINDOW", "SUMMARY", "HINTS"]
            ]
            for (a, info) in zip(listing.alerts, reply.alerts) {
                let value = String(format: "%.4g", a.value) + (a.feature.map { " (\($0))" } ?? "")
                rows.append([
                    a.model, a.version.isEmpty ? "-" : a.version, a.segment ?? "-", a.rule, a.state, a.severity, value,
                    a.window_start, a.summary, info.hints.text.isEmpty ? "-" : info.hints.text,
                ])
            }
            printTable(rows)
        }
        if !reply.unreachable.isEmpty || !reply.leaderlessShards.isEmpty {
            FileHandle.standardError.write(
                Data(
                    "warning: the list misses the alerts of shards \(reply.leaderlessShards.map(String.init).joined(separator: ", ")) (nodes not answering: \(reply.unreachable.joined(separator: ", ")))\n"
                        .utf8))
        }
    }

    static func alert(_ a: Infranaut_V1_AlertInfo) -> Alert {
        let state =
            switch a.state {
            case .pending: "pending"
            case .firing: "firing"
            default: "resolved"
            }
        let severity =
            switch a.severity {
            case .info: "info"
            case .critical: "critical"
            default: "warning"
            }
        return Alert(
            fingerprint: a.fingerprint, model: a.modelID, version: a.version,
            segment: a.segment.isEmpty ? nil : a.segment,
            rule: a.rule, state: state, severity: severity, metric: a.metric,
            feature: a.feature.isEmpty ? nil : a.feature,
            value: a.value, threshold: a.threshold, window_start: rfc3339(a.windowStartUnixMs),
            window_end: rfc3339(a.windowEndUnixMs), since: rfc3339(a.sinceUnixMs), changed: rfc3339(a.changedUnixMs),
            sequence: a.sequence, labels: a.labels, summary: a.summary,
            runbook_url: a.runbookURL.isEmpty ? nil : a.runbookURL, notify: a.notify,
            hints: a.hasHints
                ? Hints(
                    performance: a.hints.hasPerformance ? ExplainCommand.performance(a.hints.performance) : nil,
                    features: a.hints.features.map(ExplainCommand.feature),
                    segment_basis: a.hints.segmentBasis.isEmpty ? nil : a.hints.segmentBasis,
                    segments: a.hints.segments.map(ExplainCommand.segment)) : nil)
    }

}
