import ArgumentParser
import Cluster
import Foundation
import Wire

/// Kill -9 drills on a local cluster of real node processes: for each drill, one node is killed
/// and the bench measures (a) detection: until every survivor reports it dead, and (b) ingest
/// availability: until an ingest for a model whose primary was the victim, sent to a survivor,
/// succeeds again. The victim is restarted and rejoins before the next drill.
///
/// (b) measures availability of writes only; it does not check the model's earlier state (the
/// replication process test does).
struct FailoverBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "failover", abstract: "Failure detection and write availability after kill -9.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Nodes in the local cluster.")
    var nodes = 5

    @Option(help: "Drills to run.")
    var drills = 20

    func validate() throws {
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2 (one is killed, one survives)") }
        guard drills >= 1 else { throw ValidationError("--drills must be at least 1") }
    }

    final class Node {
        let id: String
        let data: String
        var process: Process?
        var client = ""
        var cluster = ""

        init(id: String, data: String) {
            self.id = id
            self.data = data
        }
    }

    func run() async throws {
        let binary = infranautBinary(self.binary)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-failover-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cluster = (0..<nodes).map { Node(id: "n\($0)", data: "\(root)/n\($0)") }
        defer { for node in cluster { node.process?.terminate() } }
        for node in cluster {
            try start(node, binary: binary, seed: node === cluster[0] ? nil : cluster[0].cluster)
        }
        try await waitUntil(timeout: .seconds(30)) { try await allAlive(cluster) }
        print("\(nodes)-node cluster formed; \(drills) drills")

        var detections: [Double] = []
        var availability: [Double] = []
        for drill in 0..<drills {
            let victim = cluster[1 + drill % (nodes - 1)]
            let survivor = cluster[0]
            let model = try await modelOwned(by: victim.id, asking: survivor)
            let client = try RequestClient(dial: survivor.client)
            defer { client.close() }
            let killed = ContinuousClock.now
            kill(victim.process!.processIdentifier, SIGKILL)
            victim.process!.waitUntilExit()

            let survivors = cluster.filter { $0 !== victim }.map(\.client)
            let victimID = victim.id
            let detector = Task {
                try await waitUntil(timeout: .seconds(60)) {
                    for address in survivors {
                        guard try await members(asking: address).first(where: { $0.id == victimID })?.status == "dead" else { return false }
                    }
                    return true
                }
                return ContinuousClock.now - killed
            }
            var attempt = 0
            try await waitUntil(timeout: .seconds(60)) {
                attempt += 1
                let request = ingest(model: model, key: "drill-\(drill)-\(attempt)")
                let reply = try await client.request(request, timeout: .seconds(6))
                return try Infranaut_V1_Response(serializedBytes: reply).outcome.code == .ok
            }
            let writable = ContinuousClock.now - killed
            let detection = try await detector.value
            detections.append(detection.inSeconds)
            availability.append(writable.inSeconds)
            print(String(format: "drill %2d: killed %@; declared dead by all survivors after %.2f s; writes to its model accepted again after %.2f s",
                         drill + 1, victim.id, detection.inSeconds, writable.inSeconds))
            try start(victim, binary: binary, seed: cluster[0].cluster)
            try await waitUntil(timeout: .seconds(60)) { try await allAlive(cluster) }
        }
        func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
        print(String(format: "detection: median %.2f s, max %.2f s; writes available again: median %.2f s, max %.2f s (%d drills, %d nodes)",
                     median(detections), detections.max() ?? 0, median(availability), availability.max() ?? 0, drills, nodes))
    }

    private func start(_ node: Node, binary: String, seed: String?) throws {
        let launched = try launchNode(
            binary: binary, dataDirectory: node.data,
            client: node.client.isEmpty ? "tcp://127.0.0.1:0" : node.client,
            cluster: node.cluster.isEmpty ? "tcp://127.0.0.1:0" : node.cluster,
            extra: ["--node-id", node.id, "--log-level", "error"] + (seed.map { ["--seed", $0] } ?? []))
        node.process = launched.process
        node.client = launched.client
        node.cluster = launched.cluster
    }

    private func allAlive(_ cluster: [Node]) async throws -> Bool {
        try await allSeeAlive(cluster.map(\.client))
    }

    private func modelOwned(by id: String, asking node: Node) async throws -> String {
        let client = try RequestClient(dial: node.client)
        defer { client.close() }
        for candidate in 0..<1_000 {
            let model = "drill-model-\(candidate)"
            let request = Infranaut_V1_Request.with {
                $0.version = 1
                $0.ring = .with { $0.modelID = model }
            }
            let ring = try Infranaut_V1_Response(serializedBytes: try await client.request(try request.serializedBytes(), timeout: .seconds(5))).ring
            if ring.shards[Int(ring.modelShard)].replicas.first == id { return model }
        }
        throw ValidationError("no model maps to \(id)")
    }

    private func ingest(model: String, key: String) -> [UInt8] {
        let request = Infranaut_V1_Request.with {
            $0.version = 1
            $0.ingest = .with {
                $0.idempotencyKey = key
                $0.batch = .with {
                    $0.modelID = model
                    $0.rowCount = 1
                    $0.columns = [.with {
                        $0.name = "x"
                        $0.doubles = .with { $0.values = [1] }
                    }]
                }
            }
        }
        return (try? request.serializedBytes()) ?? []
    }

}
