import ArgumentParser
import Foundation
import Specs
import Wire

struct ChannelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "channels",
        abstract: "The notification channels a coordinator knows, and what it sent through each.",
        discussion: "Secrets are never shown: a channel names the file or environment variable that holds them."
    )

    @OptionGroup var target: NodeTarget

    @Flag(help: "Print as JSON.")
    var json = false

    struct Channel: Encodable {
        var name: String
        var type: String
        var url: String?
        var secret_file: String?
        var secret_env: String?
        /// "4h", or "never".
        var repeat_interval: String
        var deleted: Bool
        var sent: UInt64
        var repeats: UInt64
        var failed_attempts: UInt64
        var dead_letters: UInt64
        var silenced: UInt64
    }

    struct Output: Encodable {
        var sending: Bool
        var channels: [Channel]
    }

    func run() async throws {
        let reply = try await target.ask(.channels(.init())).channels
        let output = Output(
            sending: reply.sending,
            channels: reply.channels.map { info in
                let c = info.channel
                let type =
                    switch c.type {
                    case .webhook: "webhook"
                    case .slack: "slack"
                    case .pagerduty: "pagerduty"
                    default: "unknown"
                    }
                return Channel(
                    name: c.name, type: type, url: c.url.isEmpty ? nil : c.url,
                    secret_file: c.secretFile.isEmpty ? nil : c.secretFile,
                    secret_env: c.secretEnv.isEmpty ? nil : c.secretEnv,
                    repeat_interval: c.noRepeat
                        ? "never" : SpecDuration.text(c.repeatIntervalMs == 0 ? 4 * 3_600_000 : c.repeatIntervalMs),
                    deleted: c.deleted, sent: info.sent, repeats: info.repeats,
                    failed_attempts: info.failedAttempts, dead_letters: info.deadLetters, silenced: info.silenced)
            })
        if json {
            try printJSON(output)
            return
        }
        print(
            output.sending ? "this coordinator sends the notifications" : "another coordinator sends the notifications")
        var rows = [["CHANNEL", "TYPE", "REPEAT", "SENT", "REPEATS", "FAILED ATTEMPTS", "DEAD LETTERS", "SILENCED"]]
        for c in output.channels where !c.deleted {
            rows.append([
                c.name, c.type, c.repeat_interval, "\(c.sent)", "\(c.repeats)", "\(c.failed_attempts)",
                "\(c.dead_letters)", "\(c.silenced)",
            ])
        }
        printTable(rows)
    }
}
