public import Wire
import Yams

extension SpecReader {
    /// A `kind: NotificationChannel` document (docs/alerting.md).
    mutating func channel(_ top: [String: Node], document: Node, line: Int) -> SpecObject? {
        var channel = Infranaut_V1_NotificationChannel()
        if let metadata = top["metadata"], let fields = mapping(metadata, at: "metadata", known: ["name"]) {
            if let name = fields["name"] {
                channel.name = string(name, at: "metadata.name") ?? ""
            } else {
                problem("metadata.name", metadata, "missing: the name rules' notify lists use")
            }
        } else if top["metadata"] == nil {
            problem("metadata", document, "missing; a channel needs metadata.name")
        }
        if let body = top["spec"],
            let fields = mapping(
                body, at: "spec", known: ["type", "url", "secret_file", "secret_env", "repeat_interval"])
        {
            if let type = fields["type"] {
                channel.type =
                    choice(type, at: "spec.type", ["webhook": .webhook, "slack": .slack, "pagerduty": .pagerduty])
                    ?? .unspecified
            }
            if let url = fields["url"] { channel.url = string(url, at: "spec.url") ?? "" }
            if let file = fields["secret_file"] { channel.secretFile = string(file, at: "spec.secret_file") ?? "" }
            if let env = fields["secret_env"] { channel.secretEnv = string(env, at: "spec.secret_env") ?? "" }
            if let interval = fields["repeat_interval"] {
                if case .scalar(let scalar) = interval, scalar.string == "never" {
                    channel.noRepeat = true
                } else if let ms = duration(interval, at: "spec.repeat_interval") {
                    channel.repeatIntervalMs = ms
                    if ms == 0 { problem("spec.repeat_interval", interval, "0 is not an interval; write never") }
                }
            }
        } else if top["spec"] == nil {
            problem("spec", document, "missing; a channel needs spec.type and where to send")
        }
        return SpecObject(body: .channel(channel), lines: lines, line: line)
    }
}

/// The rules every notification channel must meet, checked by the CLI and again by the node.
public enum ChannelRules {
    public static func problems(of channel: Infranaut_V1_NotificationChannel) -> [SpecProblem] {
        var found: [SpecProblem] = []
        func check(_ ok: Bool, _ path: String, _ message: @autoclosure () -> String) {
            if !ok { found.append(SpecProblem(path, message())) }
        }
        check(channel.unknownFields.data.isEmpty, "spec", "carries fields this node does not know; nothing was applied")
        check(
            ModelSpecRules.isRuleName(channel.name), "metadata.name",
            "a channel name is 1 to 63 characters of letters, digits, '.', '_' or '-'")
        check(
            [.webhook, .slack, .pagerduty].contains(channel.type) || channel.deleted,
            "spec.type", "missing; one of webhook, slack, pagerduty")
        guard !channel.deleted else { return found }
        let secrets = [channel.secretFile, channel.secretEnv].filter { !$0.isEmpty }.count
        check(secrets <= 1, "spec", "give at most one of secret_file and secret_env")
        if !channel.url.isEmpty {
            check(
                (channel.url.hasPrefix("http://") || channel.url.hasPrefix("https://"))
                    && channel.url.utf8.count <= 2_048,
                "spec.url", "an http:// or https:// address of at most 2048 bytes")
        }
        switch channel.type {
        case .pagerduty:
            check(secrets == 1, "spec", "pagerduty needs its routing key from secret_file or secret_env")
        case .webhook, .slack:
            check(
                !channel.url.isEmpty || secrets == 1, "spec.url",
                "missing; give the url, or secret_file or secret_env holding it")
            check(
                channel.url.isEmpty || secrets == 0, "spec",
                "give the url or a secret holding it, not both")
        default: break
        }
        check(
            channel.repeatIntervalMs == 0 || (1_000...30 * 86_400_000).contains(channel.repeatIntervalMs),
            "spec.repeat_interval", "\(SpecDuration.text(channel.repeatIntervalMs)) is outside 1s to 30d")
        check(
            !(channel.noRepeat && channel.repeatIntervalMs != 0), "spec.repeat_interval",
            "an interval and never at once")
        check(channel.secretFile.utf8.count <= 4_096, "spec.secret_file", "over 4096 bytes")
        check(
            channel.secretEnv.isEmpty
                || (channel.secretEnv.utf8.count <= 256
                    && channel.secretEnv.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
            "spec.secret_env", "an environment variable name: letters, digits and '_'")
        return found
    }
}
