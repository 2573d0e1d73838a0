import ArgumentParser
import Drill
import Foundation

/// A burst of clients arriving at once: every client connects, then all send one small ingest at
/// the same instant, through the model's primary, a follower and a node without a replica.
struct BurstBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "burst", abstract: "What N clients arriving at once see, through each kind of node.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Nodes in the local cluster (the nodes' default replication factor, 3).")
    var nodes = 3

    @Option(help: "Clients in each burst.")
    var clients = 500

    @Option(help: "Rows per client's batch.")
    var rows = 1

    @Option(help: "Bursts through each kind of node (medians are reported).")
    var rounds = 3

    func run() async throws {
        let cluster = try await BenchNodes.launch(binary: binary, nodes: max(3, nodes), prefix: "burst")
        defer { cluster.stop() }
        let launched = cluster.nodes
        let model = "burst-model"
        let roles = try await replicaRoles(of: model, asking: launched[0].client)
        print("\(launched.count) nodes; \(clients) clients per burst, \(rows) row(s) each; model \(model)")
        var targets = [("primary", roles.primary)]
        if let follower = roles.follower { targets.append(("follower", follower)) }
        if let other = roles.other { targets.append(("non-replica", other)) }
        for (name, address) in targets {
            var reports: [BurstReport] = []
            for round in 0..<rounds {
                reports.append(
                    try await runBurst(
                        address: address, model: model, clients: clients, rows: rows, keyPrefix: "\(name)-\(round)"))
            }
            func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            let refusals = reports.flatMap(\.refusals).reduce(into: [String: Int]()) {
                $0[$1.key, default: 0] += $1.value
            }
            let unconnected = reports.map(\.unconnected).max() ?? 0
            if unconnected > 0 {
                print(
                    "through the \(name): up to \(unconnected) clients got no answer to their warm-up request (connection limit)"
                )
            }
            print(
                String(
                    format:
                        "through the %@: first-try ack %@ of %d (median of %d bursts; worst %d), p50 %.0f ms, p99 %.0f ms, max %.0f ms; all acked after %.0f ms; failed %d; first-try refusals %@",
                    name, "\(Int(median(reports.map { Double($0.acknowledgedFirstTry) })))", clients, rounds,
                    reports.map(\.acknowledgedFirstTry).min() ?? 0, median(reports.map(\.p50Ms)),
                    median(reports.map(\.p99Ms)),
                    median(reports.map(\.maxMs)), median(reports.map(\.allAcknowledgedMs)),
                    reports.map(\.failed).reduce(0, +),
                    refusals.isEmpty
                        ? "none" : refusals.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", ")))
        }
    }
}
