import Cluster
import Drill
import Foundation
import Testing
import Wire

func members(_ node: NodeProcess) async throws -> [Infranaut_V1_MemberInfo] {
    let client = try RequestClient(dial: node.address)
    defer { client.close() }
    let response = try await call(
        client,
        .with {
            $0.version = 1
            $0.members = .init()
        }, timeout: .seconds(5))
    return response.members.members
}

/// Polls `condition` every 100 ms until it holds or `limit` passes; returns the time it took.
func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Duration? {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < limit {
        if try await condition() { return ContinuousClock.now - start }
        try await Task.sleep(for: .milliseconds(100))
    }
    return nil
}

@Suite("cluster membership with real node processes", .serialized, .timeLimit(.minutes(3)))
struct ClusterProcessTests {
    @Test(
        "3 nodes form a cluster; a kill -9'd node is declared dead by the others; restarted, it rejoins with a higher incarnation"
    )
    func formDetectRejoin() async throws {
        let first = NodeProcess(arguments: ["--node-id", "n1"])
        try await first.start()
        let second = NodeProcess(arguments: ["--node-id", "n2", "--seed", first.clusterAddress])
        let third = NodeProcess(arguments: ["--node-id", "n3", "--seed", first.clusterAddress])
        try await second.start()
        try await third.start()

        let formed = try await eventually(within: .seconds(15)) {
            for node in [first, second, third] {
                let view = try await members(node)
                guard view.count == 3, view.allSatisfy({ $0.state == .alive }) else { return false }
            }
            return true
        }
        #expect(formed != nil, "the three nodes did not all see three alive members within 15 s")
        let placed = try await members(first)
        let shards = NodeProcess.defaultShards
        #expect(placed.reduce(0) { $0 + $1.primaries.count } == shards)
        // Replication factor 3 on 3 nodes: every node holds every shard.
        #expect(placed.reduce(0) { $0 + $1.followers.count } == shards * 2)

        let before = try await members(first).first { $0.id == "n2" }?.incarnation ?? 0
        second.kill(SIGKILL)
        let detected = try await eventually(within: .seconds(20)) {
            let a = try await members(first).first { $0.id == "n2" }?.state
            let b = try await members(third).first { $0.id == "n2" }?.state
            return a == .dead && b == .dead
        }
        #expect(detected != nil, "n2 was not declared dead by both survivors within 20 s")
        if let detected { print("kill -9 of n2 declared dead by both survivors after \(detected)") }
        let survivors = try await members(first)
        #expect(survivors.first { $0.id == "n2" }?.primaries.isEmpty == true)
        #expect(survivors.reduce(0) { $0 + $1.primaries.count } == shards)

        // Restart with the same data dir (same node id) and no explicit id: it comes back.
        let restarted = NodeProcess(dataDirectory: second.dataDirectory, arguments: ["--seed", first.clusterAddress])
        try await restarted.start()
        let rejoined = try await eventually(within: .seconds(20)) {
            let n2 = try await members(third).first { $0.id == "n2" }
            return n2?.state == .alive && (n2?.incarnation ?? 0) > before
        }
        #expect(rejoined != nil, "the restarted n2 did not rejoin alive with a higher incarnation within 20 s")
    }
}

@Suite("routing to the primary", .serialized, .timeLimit(.minutes(2)))
struct RoutingTests {
    @Test("telemetry sent to any node lands on the model's primary; status from any node sees all of it")
    func anyNodeAcceptsAndForwards() async throws {
        let first = NodeProcess(arguments: ["--node-id", "r1"])
        try await first.start()
        let second = NodeProcess(arguments: ["--node-id", "r2", "--seed", first.clusterAddress])
        let third = NodeProcess(arguments: ["--node-id", "r3", "--seed", first.clusterAddress])
        try await second.start()
        try await third.start()
        let nodes = [first, second, third]
        let formed = try await eventually(within: .seconds(15)) {
            for node in nodes
            where try await members(node).filter({ $0.state == .alive && !$0.clientAddress.isEmpty }).count != 3 {
                return false
            }
            return true
        }
        try #require(formed != nil, "the nodes did not form a cluster within 15 s")
        let clients = try nodes.map { try RequestClient(dial: $0.address) }
        defer { clients.forEach { $0.close() } }
        let models = (0..<12).map { "routed-\($0)" }
        // Each batch is sent once: wait until every model's group has settled on its placement
        // (a new cluster moves voters and leaders for a few seconds).
        for model in models { _ = try await replicaRoles(of: model, asking: first.address) }
        for round in 0..<3 {
            for (index, model) in models.enumerated() {
                let client = clients[(index + round) % 3]
                let response = try await call(client, ingestRequest(model: model, key: "\(model)-\(round)", rows: 10))
                #expect(
                    response.ingest.status.code == .ok, "\(response.ingest.status.message) \(response.error.message)")
            }
        }
        // Every node answers with the primary's complete state, and the models are spread.
        var shardsUsed = Set<UInt32>()
        for model in models {
            for client in clients {
                let status = try await call(client, statusRequest(model))
                #expect(status.status.model.rows == 30, "model \(model): \(status.status.model.rows) rows")
                shardsUsed.insert(status.status.model.shard)
            }
        }
        #expect(shardsUsed.count > 3)
        // A retry through another node is recognised as the same batch.
        let retry = try await call(clients[2], ingestRequest(model: models[0], key: "\(models[0])-0", rows: 10))
        #expect(retry.ingest.replayed)
    }
}

@Suite("minority refuses writes", .serialized, .timeLimit(.minutes(2)))
struct MinorityTests {
    @Test("a node that loses sight of the majority refuses writes and linearizable reads, retryably")
    func minorityRefusesWrites() async throws {
        let first = NodeProcess(arguments: ["--node-id", "a"])
        try await first.start()
        let second = NodeProcess(arguments: ["--node-id", "b", "--seed", first.clusterAddress])
        let third = NodeProcess(arguments: ["--node-id", "c", "--seed", first.clusterAddress])
        try await second.start()
        try await third.start()
        let client = try RequestClient(dial: first.address)
        defer { client.close() }
        let formed = try await eventually(within: .seconds(15)) {
            try await members(first).filter { $0.state == .alive }.count == 3
        }
        try #require(formed != nil, "the nodes did not form a cluster within 15 s")
        // A model whose primary is the node that will survive, so its state stays readable there.
        var model = ""
        for candidate in (0..<200).map({ "p\($0)" }) {
            let ring = try await call(
                client,
                .with {
                    $0.version = 1
                    $0.ring = .with { $0.modelID = candidate }
                })
            if ring.ring.shards[Int(ring.ring.modelShard)].replicas.first == "a" {
                model = candidate
                break
            }
        }
        try #require(!model.isEmpty, "no model of the first 200 has its primary on node a")
        // Right after the cluster formed the shard may still be electing its leader (retryable
        // UNAVAILABLE on a busy machine): the same key until it is acknowledged.
        #expect(await ingestUntilAcked(client, model: model, key: "before", rows: 5))

        second.kill(SIGKILL)
        third.kill(SIGKILL)
        // A write cannot commit without a majority of the shard's replicas: the leader steps down
        // within an election timeout (check-quorum) and the write is refused, retryably.
        let refused = try await eventually(within: .seconds(25)) {
            let status = try await call(client, ingestRequest(model: model, key: "probe-\(UUID())", rows: 1)).ingest
                .status
            return status.code == .unavailable && status.message.contains("majority")
        }
        #expect(refused != nil, "the lone survivor kept accepting writes")
        let response = try await call(client, ingestRequest(model: model, key: "after", rows: 5))
        #expect(response.ingest.status.code == .unavailable)
        #expect(response.ingest.status.retryable)
        #expect(response.ingest.status.message.contains("majority"))
        // A status must not return state a newer leader (on the other side) may have replaced, so it
        // is refused too, retryably.
        let read = try await call(client, statusRequest(model)).status.status
        #expect(read.code == .unavailable && read.retryable, "\(read)")

    }
}
