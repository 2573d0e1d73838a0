import ArgumentParser
import Foundation

@main
struct Infranaut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infranaut",
        abstract: "Monitor machine-learning models in production: profiles, drift, data quality.",
        subcommands: [
            StartCommand.self, PushCommand.self, LabelsCommand.self, CompareCommand.self, ExplainCommand.self,
            StatusCommand.self,
            DriftCommand.self,
            GenerateCommand.self,
            MembersCommand.self, RingCommand.self, LeaveCommand.self, FaultCommand.self, DrillCommand.self,
            PublishEventCommand.self, EventsCommand.self, ApplyCommand.self, GetCommand.self, DeleteCommand.self,
            WindowsCommand.self, AlertsCommand.self, ChannelsCommand.self, SilenceCommand.self, SilencesCommand.self,
            ConfigCommand.self, BackupCommand.self,
        ]
    )

    /// Runs the command; every error ends as one line on stderr. A usage error (unknown option,
    /// missing or invalid value) prints `error: <message> (see 'infranaut <cmd> --help')` and exits
    /// 64 instead of the whole usage screen; any other error prints `error: <message>` and exits 1.
    /// Help and version requests print as usual.
    static func main() async {
        do {
            var arguments = Array(CommandLine.arguments.dropFirst())
            // `start` takes its settings from a file and the environment too (StartConfig).
            if arguments.first == "start", !arguments.contains("--help"), !arguments.contains("-h") {
                do {
                    arguments =
                        ["start"]
                        + (try StartConfig.layered(
                            arguments: Array(arguments.dropFirst()), environment: ProcessInfo.processInfo.environment
                        )
                        .arguments)
                } catch {
                    throw ValidationError(error.description)
                }
            }
            var command = try await asyncParseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = oneLine(message(for: error))
            guard code != .success, !message.isEmpty else { exit(withError: error) }
            var line = "error: \(message)"
            if code == .validationFailure { line += " (see '\(commandPath()) --help')" }
            FileHandle.standardError.write(Data((line + "\n").utf8))
            Foundation.exit(code.rawValue)
        }
    }

    /// `infranaut` and the subcommand named on the command line, if any.
    static func commandPath(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> String {
        let names = Set(configuration.subcommands.compactMap { $0.configuration.commandName })
        guard let name = arguments.first(where: { names.contains($0) }) else { return "infranaut" }
        return "infranaut \(name)"
    }

    /// A message on one line: an `Error: ` prefix dropped, line breaks joined with "; ".
    static func oneLine(_ message: String) -> String {
        var text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }
}
