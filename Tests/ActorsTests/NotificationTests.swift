import Foundation
import SwiftProtobuf
import Testing
import Wire

@testable import Actors

/// The notification ledger (what is owed, grouped, silenced) and the bodies each channel type is
/// sent, checked against the receivers' documented formats.
@Suite("notifications")
struct NotificationTests {
    func info(_ rule: String, fingerprint: String, sequence: UInt64, state: Infranaut_V1_AlertState, fired: Bool = true)
        -> Infranaut_V1_AlertInfo
    {
        .with {
            $0.fingerprint = fingerprint
            $0.modelID = "fraud-v1"
            $0.version = "v2"
            $0.rule = rule
            $0.state = state
            $0.fired = fired
            $0.sequence = sequence
            $0.severity = .critical
            $0.metric = "drift_share"
            $0.value = 0.4
            $0.threshold = 0.1
            $0.windowStartUnixMs = 1_764_518_400_000  // 2025-11-30T16:00:00Z
            $0.windowEndUnixMs = 1_764_522_000_000
            $0.sinceUnixMs = 1_764_518_400_000
            $0.changedUnixMs = 1_764_522_001_000
            $0.labels = ["team": "risk"]
            $0.summary = "fraud-v1 drifts"
            $0.runbookURL = "https://runbooks.example/drift"
            $0.notify = ["hook"]
        }
    }

    func event(_ kind: String, _ id: String, _ payload: some SwiftProtobuf.Message) throws -> Infranaut_V1_ClusterEvent
    {
        try .with {
            $0.id = id
            $0.kind = kind
            $0.payload = try payload.serializedData()
        }
    }

    /// The webhook channel "hook", applied at `applied`, changed by `change`.
    func hook(applied: Int64, _ change: (inout Infranaut_V1_NotificationChannel) -> Void = { _ in }) throws
        -> Infranaut_V1_ClusterEvent
    {
        var channel = Infranaut_V1_NotificationChannel.with {
            $0.name = "hook"
            $0.type = .webhook
            $0.url = "http://127.0.0.1:9/hook"
            $0.appliedUnixMs = applied
        }
        change(&channel)
        return try event("channel", "channel/hook/\(applied)", channel)
    }

    func ledger(_ infos: [Infranaut_V1_AlertInfo]) throws -> NotificationLedger {
        var ledger = NotificationLedger()
        ledger.absorb(try hook(applied: 1))
        for info in infos { ledger.absorb(try event("alert", "alert/\(info.fingerprint)/\(info.sequence)", info)) }
        return ledger
    }

    @Test("one notice per window and status; pending and never-fired resolutions are not owed; a record settles it")
    func owed() throws {
        var ledger = try self.ledger([
            info("drift", fingerprint: "a", sequence: 2, state: .firing),
            info("missing", fingerprint: "b", sequence: 1, state: .firing),
            info("late", fingerprint: "c", sequence: 1, state: .pending, fired: false),
            info("late", fingerprint: "d", sequence: 2, state: .resolved, fired: false),
        ])
        var due = ledger.due(nowMs: 0)
        #expect(due.count == 1 && due[0].alerts.map(\.fingerprint) == ["a", "b"] && due[0].firing)
        // Absorbing the same events again changes nothing.
        ledger.absorb(try event("alert", "alert/a/2", info("drift", fingerprint: "a", sequence: 2, state: .firing)))
        #expect(ledger.due(nowMs: 0).count == 1)
        ledger.absorb(
            try event(
                "notified", "notified/a/2/hook",
                Infranaut_V1_NotifiedRecord.with {
                    $0.fingerprint = "a"
                    $0.sequence = 2
                    $0.channel = "hook"
                }))
        due = ledger.due(nowMs: 0)
        #expect(due.count == 1 && due[0].alerts.map(\.fingerprint) == ["b"])
    }

    @Test("a silence of the model and rule, with matching labels, mutes a change while it lasts")
    func silenced() throws {
        var ledger = try self.ledger([info("drift", fingerprint: "a", sequence: 1, state: .firing)])
        func silence(_ id: String, rule: String, matchers: [String: String]) throws -> Infranaut_V1_ClusterEvent {
            try event(
                "silence", "silence/\(id)/1",
                Infranaut_V1_Silence.with {
                    $0.id = id
                    $0.modelID = "fraud-v1"
                    $0.rule = rule
                    $0.matchers = matchers
                    $0.startsUnixMs = 100
                    $0.endsUnixMs = 200
                    $0.updatedUnixMs = 1
                })
        }
        ledger.absorb(try silence("other-rule", rule: "missing", matchers: [:]))
        ledger.absorb(try silence("other-team", rule: "", matchers: ["team": "ops"]))
        #expect(ledger.due(nowMs: 150).first?.silencedBy == nil)
        ledger.absorb(try silence("s1", rule: "drift", matchers: ["team": "risk", "version": "v2"]))
        #expect(ledger.due(nowMs: 150).first?.silencedBy == "s1")
        #expect(ledger.due(nowMs: 200).first?.silencedBy == nil, "ended")
        #expect(ledger.due(nowMs: 99).first?.silencedBy == nil, "not begun")
    }

    @Test(
        "a firing alert is notified again each interval after its own notice: only the latest repetition, each once, none once resolved"
    )
    func repeats() throws {
        let fired = info("drift", fingerprint: "a", sequence: 2, state: .firing)
        let t = fired.changedUnixMs
        var ledger = try self.ledger([fired])
        ledger.absorb(try hook(applied: 2) { $0.repeatIntervalMs = 60_000 })
        func record(repetition k: UInt32) throws -> Infranaut_V1_ClusterEvent {
            try event(
                "notified", "notified/a/2/hook/\(k)",
                Infranaut_V1_NotifiedRecord.with {
                    $0.fingerprint = "a"
                    $0.sequence = 2
                    $0.channel = "hook"
                    $0.repetition = k
                })
        }
        // Before its own notice is recorded, only that notice is owed, however late it is.
        var due = ledger.due(nowMs: t + 210_000)
        #expect(due.count == 1 && due[0].repetition == 0 && !due[0].dedupKey.contains("#"))
        ledger.absorb(try record(repetition: 0))
        #expect(ledger.due(nowMs: t + 59_999).isEmpty, "not yet an interval")
        due = ledger.due(nowMs: t + 60_000)
        #expect(due.count == 1 && due[0].repetition == 1 && due[0].firing && due[0].dedupKey.hasSuffix("@hook#1"))
        // Away for more than one interval: the latest repetition only.
        due = ledger.due(nowMs: t + 150_000)
        #expect(due.map(\.repetition) == [2])
        ledger.absorb(try record(repetition: 2))
        #expect(ledger.due(nowMs: t + 150_000).isEmpty, "recorded by any coordinator, sent once")
        #expect(ledger.due(nowMs: t + 180_000).map(\.repetition) == [3])
        // A silence mutes a repetition like a change.
        ledger.absorb(
            try event(
                "silence", "silence/s/1",
                Infranaut_V1_Silence.with {
                    $0.id = "s"
                    $0.modelID = "fraud-v1"
                    $0.startsUnixMs = t
                    $0.endsUnixMs = t + 200_000
                    $0.updatedUnixMs = 1
                }))
        #expect(ledger.due(nowMs: t + 180_000).first?.silencedBy == "s")
        // Resolved: the resolution is owed, and no more repeats.
        var resolved = info("drift", fingerprint: "a", sequence: 3, state: .resolved)
        resolved.changedUnixMs = t + 190_000
        ledger.absorb(try event("alert", "alert/a/3", resolved))
        due = ledger.due(nowMs: t + 900_000)
        #expect(due.count == 1 && !due[0].firing && due[0].repetition == 0)
    }

    @Test("a channel that never repeats gets the changes only")
    func noRepeat() throws {
        var ledger = try self.ledger([info("drift", fingerprint: "a", sequence: 2, state: .firing)])
        ledger.absorb(try hook(applied: 2) { $0.noRepeat = true })
        let t = ledger.alerts["a"]!.changedUnixMs
        ledger.markNotified(ledger.alerts["a"]!, channel: "hook")
        #expect(ledger.due(nowMs: t + 30 * 86_400_000).isEmpty)
        // The default interval is 4 hours.
        #expect(NotificationLedger.repeatInterval(.with { $0.name = "x" }) == Int64(4 * 3_600_000))
    }

    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test("webhook: the Alertmanager webhook JSON, version 4")
    func webhook() throws {
        let notice = NotificationLedger.Notice(
            channel: .with { $0.name = "hook" },
            alerts: [info("drift", fingerprint: "a", sequence: 3, state: .resolved)],
            firing: false)
        let body = try json(try NotificationFormats.webhook(notice))
        #expect(body["version"] as? String == "4" && body["status"] as? String == "resolved")
        #expect(body["receiver"] as? String == "hook" && body["groupKey"] as? String == notice.dedupKey)
        for key in ["groupLabels", "commonLabels", "commonAnnotations", "externalURL", "truncatedAlerts"] {
            #expect(body[key] != nil, "\(key)")
        }
        let alert = try #require((body["alerts"] as? [[String: Any]])?.first)
        #expect(alert["status"] as? String == "resolved" && alert["fingerprint"] as? String == "a")
        #expect(
            alert["startsAt"] as? String == "2025-11-30T16:00:00Z"
                && alert["endsAt"] as? String == "2025-11-30T17:00:01Z")
        let labels = try #require(alert["labels"] as? [String: String])
        #expect(
            labels == [
                "alertname": "drift", "model": "fraud-v1", "severity": "critical", "version": "v2", "team": "risk",
            ])
        let annotations = try #require(alert["annotations"] as? [String: String])
        #expect(
            annotations["summary"] == "fraud-v1 drifts"
                && annotations["runbook_url"] == "https://runbooks.example/drift")
    }

    @Test("slack: an incoming-webhook message with a readable text")
    func slack() throws {
        let notice = NotificationLedger.Notice(
            channel: .with { $0.name = "team" },
            alerts: [
                info("drift", fingerprint: "a", sequence: 1, state: .firing),
                info("missing", fingerprint: "b", sequence: 1, state: .firing),
            ], firing: true)
        let body = try json(try NotificationFormats.slack(notice))
        #expect(body.keys.sorted() == ["text"])
        let text = try #require(body["text"] as? String)
        let lines = text.split(separator: "\n")
        #expect(lines.first == "[FIRING:2] fraud-v1, window from 2025-11-30T16:00:00Z", "\(text)")
        #expect(lines.count == 3 && lines[1].hasPrefix("• drift (critical): fraud-v1 drifts"))
        #expect(text.contains("<https://runbooks.example/drift|runbook>"))
    }

    @Test("pagerduty: Events API v2, one event per alert, trigger then resolve under the fingerprint")
    func pagerDuty() throws {
        for (state, action) in [(Infranaut_V1_AlertState.firing, "trigger"), (.resolved, "resolve")] {
            let notice = NotificationLedger.Notice(
                channel: .with { $0.name = "oncall" },
                alerts: [
                    info("drift", fingerprint: "a", sequence: 1, state: state),
                    info("x", fingerprint: "b", sequence: 1, state: state),
                ],
                firing: state == .firing)
            let bodies = try NotificationFormats.pagerDuty(notice, routingKey: "R0UT1NG")
            #expect(bodies.count == 2)
            let event = try json(bodies[0])
            #expect(event["routing_key"] as? String == "R0UT1NG" && event["event_action"] as? String == action)
            #expect(event["dedup_key"] as? String == "a")
            let payload = try #require(event["payload"] as? [String: Any])
            #expect(
                payload["summary"] as? String == "fraud-v1 drifts"
                    && payload["source"] as? String == "infranaut/fraud-v1")
            #expect(["critical", "error", "warning", "info"].contains(payload["severity"] as? String ?? ""))
            #expect(payload["timestamp"] as? String == "2025-11-30T17:00:01Z")
            #expect((payload["custom_details"] as? [String: String])?["team"] == "risk")
        }
    }
}
