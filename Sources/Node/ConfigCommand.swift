import ArgumentParser
import Foundation

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "The settings infranaut start would run with.",
        subcommands: [PrintConfig.self]
    )

    struct PrintConfig: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "print",
            abstract:
                "Every setting of start, its value and where it came from: a flag, an INFRANAUT_* variable, the file and line, or the default.",
            discussion:
                "Give the same --config and flags as to start: infranaut config print --config node.yaml --shards 64"
        )

        @Argument(parsing: .allUnrecognized, help: "The flags start would get, --config included.")
        var flags: [String] = []

        @Flag(help: "Print as JSON.")
        var json = false

        struct Row: Encodable {
            var key: String
            var value: String
            var source: String
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let layered: (arguments: [String], sources: [String: String])
            do {
                layered = try StartConfig.layered(arguments: flags, environment: environment)
            } catch {
                throw ValidationError(error.description)
            }
            let command = try StartCommand.parse(layered.arguments)
            var rows = StartConfig.keys.map { key, _, value in
                Row(key: key, value: value(command), source: layered.sources[key] ?? "default")
            }
            // The secret itself is never printed, only where it comes from.
            if environment["INFRANAUT_CLUSTER_SECRET"] != nil {
                rows.append(Row(key: "cluster-secret", value: "*****", source: "env INFRANAUT_CLUSTER_SECRET"))
            }
            if json {
                try printJSON(rows)
                return
            }
            printTable(
                [["KEY", "VALUE", "SOURCE"]] + rows.map { [$0.key, $0.value.isEmpty ? "-" : $0.value, $0.source] })
        }
    }
}
