import ArgumentParser
import Foundation
import Specs
import Wire

/// `infranaut apply`: creates or updates the models a spec file declares (docs/models.md).
struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Create or update models from a YAML spec file (one object per document).")

    @Option(name: .customShort("f"), help: "The spec file (YAML; '-' reads stdin).")
    var file: String

    @OptionGroup var target: NodeTarget

    @Flag(name: .customLong("dry-run"), help: "Check the file and say what would change, without changing anything.")
    var dryRun = false

    static let maxFileBytes = 4 << 20

    func run() async throws {
        let text = try readSpecFile(file)
        let (objects, problems) = SpecDocuments.read(text)
        guard problems.isEmpty else {
            for problem in problems { FileHandle.standardError.write(Data((locate(problem) + "\n").utf8)) }
            throw CLIError(
                "\(file) has \(problems.count) problem\(problems.count == 1 ? "" : "s"); nothing was applied")
        }
        for object in objects {
            guard case .alertDefaults = object.body else { continue }
            throw CLIError(
                "\(file):\(object.line): AlertDefaults is a node setting, not applied: give the file to infranaut start --alert-defaults; nothing was applied"
            )
        }
        let client = try target.client()
        defer { client.close() }
        for object in objects {
            let spec: Infranaut_V1_ModelSpec
            switch object.body {
            case .model(let model): spec = model
            case .channel(let channel):
                try await apply(channel, object: object, through: client)
                continue
            case .alertDefaults: continue
            }
            let response = try await client.send(
                .with {
                    $0.version = 1
                    $0.applyModel = .with {
                        $0.spec = spec
                        $0.dryRun = dryRun
                    }
                })
            let reply = response.applyModel
            guard response.outcome.code == .ok else {
                for problem in reply.problems {
                    let found = SpecProblem(problem.path, problem.message, line: object.line(of: problem.path))
                    FileHandle.standardError.write(Data((locate(found) + "\n").utf8))
                }
                throw CLIError("model/\(spec.name): \(statusLine(response.outcome))")
            }
            let outcome =
                switch reply.outcome {
                case .created: "created"
                case .configured: "configured"
                default: "unchanged"
                }
            print("model/\(spec.name) \(outcome)\(dryRun ? " (dry run)" : "")")
        }
    }

    /// Sends a channel to the node, which hands it to every coordinator.
    private func apply(_ channel: Infranaut_V1_NotificationChannel, object: SpecObject, through client: NodeClient)
        async throws
    {
        guard !dryRun else {
            print("notificationchannel/\(channel.name) checked (dry run)")
            return
        }
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.applyChannel = .with { $0.channel = channel }
            })
        guard response.outcome.code == .ok else {
            for problem in response.applyChannel.problems {
                let found = SpecProblem(problem.path, problem.message, line: object.line(of: problem.path))
                FileHandle.standardError.write(Data((locate(found) + "\n").utf8))
            }
            throw CLIError("notificationchannel/\(channel.name): \(statusLine(response.outcome))")
        }
        print("notificationchannel/\(channel.name) configured")
    }

    private func locate(_ problem: SpecProblem) -> String {
        let place = problem.line.map { "\(file):\($0)" } ?? file
        return "\(place): \(problem.path): \(problem.message)"
    }
}

/// The node a command talks to, and how long it waits for each answer.
struct NodeTarget: ParsableArguments {
    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(name: .customLong("timeout-ms"), help: "Deadline per request.")
    var timeoutMs = 10_000

    func client() throws -> NodeClient { try NodeClient(address: node, timeout: .milliseconds(timeoutMs)) }

    /// Sends one request with `body` and returns the answer, or throws the node's status when it
    /// is not OK.
    func ask(_ body: Infranaut_V1_Request.OneOf_Body) async throws -> Infranaut_V1_Response {
        let client = try client()
        defer { client.close() }
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.body = body
            })
        guard response.outcome.code == .ok else { throw CLIError("\(node): \(statusLine(response.outcome))") }
        return response
    }
}

/// Reads a spec file (or stdin for `-`), refusing files over ``ApplyCommand/maxFileBytes``.
func readSpecFile(_ path: String) throws -> String {
    let data: Data
    if path == "-" {
        data = FileHandle.standardInput.readDataToEndOfFile()
    } else {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CLIError(
                "cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")"
            )
        }
        defer { try? handle.close() }
        data = handle.readData(ofLength: ApplyCommand.maxFileBytes + 1)
    }
    guard data.count <= ApplyCommand.maxFileBytes else {
        throw CLIError("\(path) is over \(ApplyCommand.maxFileBytes >> 20) MiB; split it into several files")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path) is not UTF-8 text") }
    return text
}

/// `infranaut get models` and `infranaut get model NAME`.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Show models and their specs.", subcommands: [Models.self, Model.self])

    struct Models: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "models", abstract: "List every model of the cluster.")

        @OptionGroup var target: NodeTarget

        @Option(name: .customShort("o"), help: "Output: table or json.")
        var output = "table"

        func validate() throws {
            guard ["table", "json"].contains(output) else { throw ValidationError("-o must be table or json") }
        }

        struct Row: Encodable {
            var name: String
            var generation: UInt64
            var spec: Bool
            var rows: UInt64
            var task: String?
            var deleted_until: String?
            var labels: [String: String]
        }

        func run() async throws {
            let response = try await target.ask(.listModels(.init()))
            let list = response.listModels
            let rows = list.models.map { model in
                Row(
                    name: model.name, generation: model.generation, spec: model.hasSpec_p, rows: model.rows,
                    task: SpecRendering.taskName(model.task),
                    deleted_until: model.purgeAfterUnixMs == 0 ? nil : rfc3339(model.purgeAfterUnixMs),
                    labels: model.labels)
            }
            if output == "json" {
                struct Listing: Encodable {
                    var models: [Row]
                    var unreachable: [String]
                    var leaderless_shards: [UInt32]
                }
                try printJSON(
                    Listing(models: rows, unreachable: list.unreachable, leaderless_shards: list.leaderlessShards))
            } else {
                var table = [["NAME", "GENERATION", "SPEC", "ROWS", "TASK", "STATUS"]]
                for row in rows {
                    table.append([
                        row.name, row.spec ? "\(row.generation)" : "-", row.spec ? "applied" : "inferred",
                        "\(row.rows)",
                        row.task ?? "-", row.deleted_until.map { "deleted (kept until \($0))" } ?? "active",
                    ])
                }
                printTable(table)
            }
            if !list.unreachable.isEmpty {
                FileHandle.standardError.write(
                    Data(
                        "warning: no answer from \(list.unreachable.joined(separator: ", ")); their shards' models are missing\n"
                            .utf8))
            }
            if !list.leaderlessShards.isEmpty {
                let shards = list.leaderlessShards.map(String.init).joined(separator: ", ")
                FileHandle.standardError.write(
                    Data(
                        "warning: no answering leader for shard(s) \(shards); their models are missing\n".utf8))
            }
        }
    }

    struct Model: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model",
            abstract: "Show one model's spec (as applied, or inferred from its telemetry), ready to edit and apply.")

        @Argument(help: "The model id.")
        var name: String

        @OptionGroup var target: NodeTarget

        @Option(name: .customShort("o"), help: "Output: yaml or json.")
        var output = "yaml"

        func validate() throws {
            guard ["yaml", "json"].contains(output) else { throw ValidationError("-o must be yaml or json") }
        }

        func run() async throws {
            let response = try await target.ask(.getModel(.with { $0.name = name }))
            let model = response.getModel
            var document = SpecRendering.document(model.spec, generation: model.generation, inferred: model.inferred)
            if model.purgeAfterUnixMs != 0, case .map(var pairs) = document {
                // Said where a reader looks first; applying the output undoes the deletion.
                if let index = pairs.firstIndex(where: { $0.0 == "metadata" }), case .map(var metadata) = pairs[index].1
                {
                    metadata.append(("deletedUntil", .string(rfc3339(model.purgeAfterUnixMs))))
                    pairs[index].1 = .map(metadata)
                }
                document = .map(pairs)
            }
            print(output == "json" ? SpecRendering.json(document) : SpecRendering.yaml(document), terminator: "")
            if output == "json" { print() }
        }
    }
}

/// `infranaut delete model NAME --yes`.
struct DeleteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete", abstract: "Delete models.", subcommands: [Model.self])

    struct Model: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "model",
            abstract:
                "Delete a model: its state is removed after the deleted-model retention (24 h); applying its spec before then undoes the deletion."
        )

        @Argument(help: "The model id.")
        var name: String

        @OptionGroup var target: NodeTarget

        @Flag(help: "Confirm the deletion.")
        var yes = false

        func run() async throws {
            guard yes else {
                throw CLIError(
                    "deleting model \(name) removes its telemetry, windows and spec once the deleted-model retention (24 h) ends; pass --yes to delete it"
                )
            }
            let response = try await target.ask(.deleteModel(.with { $0.name = name }))
            print(
                "model/\(name) deleted (its state is kept until \(rfc3339(response.deleteModel.purgeAfterUnixMs)); apply its spec before then to undo)"
            )
        }
    }
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, to the second.
func rfc3339(_ ms: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}
