import ArgumentParser
import Foundation
import Specs
import Wire

/// `infranaut silence`: mutes the notifications of a model's matching alerts for a while.
struct SilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Mute the notifications of a model's alerts for a while (they still change state).",
        discussion: """
            A silenced alert's changes are recorded as notified and never sent, even after the silence
            ends. Every coordinator keeps the silence. docs/alerting.md, "Silences".
            """
    )

    @OptionGroup var target: NodeTarget

    @Option(help: "Model id.")
    var model: String

    @Option(help: "Only this rule's alerts.")
    var rule: String?

    @Option(help: "A label the alert must have, as key=value (repeat for more).")
    var matcher: [String] = []

    @Option(name: .customLong("for"), help: "How long: 1m to 90d (90s, 10m, 2h, 7d).")
    var duration: String

    @Option(help: "Why, for the people who find it.")
    var comment: String

    @Flag(help: "Print the silence as JSON.")
    var json = false

    func validate() throws {
        guard SpecDuration.milliseconds(duration) != nil else {
            throw ValidationError("--for \"\(duration)\" is not a duration such as 90s, 10m, 2h or 7d")
        }
        for m in matcher where !m.contains("=") || m.hasPrefix("=") {
            throw ValidationError("--matcher \"\(m)\" is not key=value")
        }
        guard !comment.isEmpty else { throw ValidationError("--comment must say why") }
    }

    func run() async throws {
        var matchers: [String: String] = [:]
        for m in matcher {
            let parts = m.split(separator: "=", maxSplits: 1)
            matchers[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        let reply = try await target.ask(
            .silence(
                .with {
                    $0.silence = .with {
                        $0.modelID = model
                        $0.rule = rule ?? ""
                        $0.matchers = matchers
                        $0.comment = comment
                    }
                    $0.forMs = SpecDuration.milliseconds(duration) ?? 0
                })
        ).silence
        if json {
            try printJSON(SilencesCommand.row(reply.silence))
        } else {
            print("silence \(reply.silence.id) until \(rfc3339(reply.silence.endsUnixMs))")
        }
    }
}

/// `infranaut silences`: lists the silences a coordinator knows, or ends one.
struct SilencesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silences", abstract: "List the silences (active, and ended within a day), or end one now.")

    @OptionGroup var target: NodeTarget

    @Option(help: "End this silence now.")
    var expire: String?

    @Flag(help: "Print as JSON.")
    var json = false

    struct Row: Encodable {
        var id: String
        var model: String
        var rule: String?
        var matchers: [String: String]
        var starts: String
        var ends: String
        var comment: String
        var created_by: String
    }

    static func row(_ s: Infranaut_V1_Silence) -> Row {
        Row(
            id: s.id, model: s.modelID, rule: s.rule.isEmpty ? nil : s.rule, matchers: s.matchers,
            starts: rfc3339(s.startsUnixMs), ends: rfc3339(s.endsUnixMs), comment: s.comment, created_by: s.createdBy)
    }

    struct Listing: Encodable {
        var silences: [Row]
    }

    func run() async throws {
        if let expire {
            let reply = try await target.ask(.silence(.with { $0.expireID = expire })).silence
            print("silence \(reply.silence.id) ended at \(rfc3339(reply.silence.endsUnixMs))")
            return
        }
        let reply = try await target.ask(.silences(.init())).silences
        let rows = reply.silences.map(Self.row)
        if json {
            try printJSON(Listing(silences: rows))
            return
        }
        var table = [["ID", "MODEL", "RULE", "MATCHERS", "ENDS", "COMMENT"]]
        for r in rows {
            table.append([
                r.id, r.model, r.rule ?? "-",
                r.matchers.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: ","), r.ends, r.comment,
            ])
        }
        printTable(table)
    }
}
