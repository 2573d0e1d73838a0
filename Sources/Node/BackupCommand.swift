import ArgumentParser
import Foundation
import Wire

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Make a consistent copy of a node's database while it runs (needs the cluster secret).",
        discussion: """
            The node writes RocksDB's checkpoint of its database into <data-dir>/backups/NAME: the
            memtables are flushed and the files hard-linked, so it takes little time and space until
            the database moves on. Copy the directory elsewhere, then remove it. To restore a node,
            stop it and put the copy in place of <data-dir>/rocksdb (docs/operations.md, "Backups").
              infranaut backup --node tcp://127.0.0.1:7400 --name 2026-12-01 --cluster-secret-file F
            """
    )

    @Option(help: "Client address of the node.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Name of the copy under <data-dir>/backups (letters, digits, '.', '_', '-').")
    var name: String

    @Option(
        name: .customLong("cluster-secret-file"),
        help: "File holding the cluster secret. Default: $INFRANAUT_CLUSTER_SECRET.")
    var clusterSecretFile: String?

    @Flag(help: "Print as JSON.")
    var json = false

    struct Output: Encodable {
        var path: String
        var bytes: UInt64
        var took_ms: Int64
    }

    func run() async throws {
        let response = try await askWithSecret(
            node: node, secretFile: clusterSecretFile, .backup(.with { $0.name = name }), what: "backup",
            timeout: .seconds(600))
        guard case .backup(let reply) = response.body, reply.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        let output = Output(path: reply.path, bytes: reply.bytes, took_ms: reply.tookMs)
        if json {
            try printJSON(output)
        } else {
            print("backup of \(node) in \(output.path) (\(output.bytes) bytes, \(output.took_ms) ms)")
        }
    }
}
