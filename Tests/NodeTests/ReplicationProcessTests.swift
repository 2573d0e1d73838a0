import Cluster
import Drill
import Foundation
import Testing
import Wire

/// The node process whose id is `id`.
private func node(_ id: String, in nodes: [(id: String, process: NodeProcess)]) -> NodeProcess? {
    nodes.first { $0.id == id }?.process
}

private func ringPrimary(of model: String, via client: RequestClient) async throws -> String? {
    let response = try await call(
        client,
        .with {
            $0.version = 1
            $0.ring = .with { $0.modelID = model }
        }, timeout: .seconds(5))
    let shard = response.ring.modelShard
    return response.ring.shards.first { $0.shard == shard }?.replicas.first
}

/// Sends one batch until it is acknowledged or `attempts` run out; returns whether it was.

@Suite("replication with real node processes", .serialized, .timeLimit(.minutes(3)))
struct ReplicationProcessTests {
    @Test(
        "kill -9 of a shard's primary loses no acknowledged batch: the follower serves all of them, and retries apply once"
    )
    func primaryKillLosesNothingAcknowledged() async throws {
        let first = NodeProcess(arguments: ["--node-id", "a1"])
        try await first.start()
        let second = NodeProcess(arguments: ["--node-id", "a2", "--seed", first.clusterAddress])
        let third = NodeProcess(arguments: ["--node-id", "a3", "--seed", first.clusterAddress])
        try await second.start()
        try await third.start()
        let nodes = [(id: "a1", process: first), (id: "a2", process: second), (id: "a3", process: third)]
        let formed = try await eventually(within: .seconds(15)) {
            for entry in nodes
            where try await members(entry.process).filter({ $0.state == .alive && !$0.clientAddress.isEmpty }).count
                != 3
            {
                return false
            }
            return true
        }
        try #require(formed != nil, "the three nodes did not form a cluster within 15 s")

        // The victim is the primary of the first model; the writer talks to a node that survives.
        let models = (0..<6).map { "replicated-\($0)" }
        let probe = try RequestClient(dial: first.address)
        defer { probe.close() }
        // A new cluster moves voters and leaders for a few seconds; the batches before the kill are
        // sent once each, so wait until every model's group has its placement's voters and leader.
        for model in models { _ = try await replicaRoles(of: model, asking: first.address) }
        let victimID = try #require(try await ringPrimary(of: models[0], via: probe))
        let victim = try #require(node(victimID, in: nodes))
        let survivors = nodes.filter { $0.id != victimID }.map(\.process)
        let writer = try RequestClient(dial: survivors[0].address)
        defer { writer.close() }

        var attempted: [String: [String]] = [:]
        var acked: [String: Int] = [:]
        for round in 0..<15 {
            for model in models {
                let key = "\(model)-\(round)"
                attempted[model, default: []].append(key)
                if await ingestUntilAcked(writer, model: model, key: key, attempts: 1) { acked[model, default: 0] += 1 }
            }
        }
        #expect(acked.values.reduce(0, +) == 15 * models.count, "every batch before the kill is acknowledged")

        victim.kill(SIGKILL)
        // Keep writing while the cluster notices; a batch counts as acknowledged only on OK.
        for round in 15..<30 {
            for model in models {
                let key = "\(model)-\(round)"
                attempted[model, default: []].append(key)
                if await ingestUntilAcked(writer, model: model, key: key, attempts: 1) { acked[model, default: 0] += 1 }
            }
        }
        let noticed = try await eventually(within: .seconds(20)) {
            for survivor in survivors
            where try await members(survivor).first(where: { $0.id == victimID })?.state != .dead {
                return false
            }
            return true
        }
        #expect(noticed != nil, "the survivors did not declare \(victimID) dead within 20 s")

        // Before any retry: every acknowledged batch is there, read through either survivor.
        let readers = try survivors.map { try RequestClient(dial: $0.address) }
        defer { readers.forEach { $0.close() } }
        for model in models {
            for reader in readers {
                let status = try await call(reader, statusRequest(model))
                #expect(
                    status.status.model.rows >= UInt64(10 * (acked[model] ?? 0)),
                    "model \(model): \(status.status.model.rows) rows after failover, \(acked[model] ?? 0) batches acknowledged (\(status.status.status.message))"
                )
            }
        }
        // Resending every attempted batch with its key applies each exactly once.
        for model in models {
            for key in attempted[model] ?? [] {
                #expect(
                    await ingestUntilAcked(writer, model: model, key: key, attempts: 30),
                    "\(key) was never acknowledged after failover")
            }
        }
        for model in models {
            for reader in readers {
                let status = try await call(reader, statusRequest(model))
                #expect(
                    status.status.model.rows == UInt64(10 * (attempted[model]?.count ?? 0)),
                    "model \(model): \(status.status.model.rows) rows")
            }
        }

        // The victim comes back with its old data and is the shard's primary again: it must take
        // over the state its follower built meanwhile, not serve its own older copy.
        let restarted = NodeProcess(
            dataDirectory: victim.dataDirectory,
            arguments: [
                "--seed", first.clusterAddress == victim.clusterAddress ? second.clusterAddress : first.clusterAddress,
            ])
        try await restarted.start()
        let back = try await eventually(within: .seconds(20)) {
            for survivor in survivors
            where try await members(survivor).first(where: { $0.id == victimID })?.state != .alive {
                return false
            }
            return try await members(restarted).filter({ $0.state == .alive && !$0.clientAddress.isEmpty }).count == 3
        }
        #expect(back != nil, "the restarted \(victimID) did not rejoin within 20 s")
        for round in 30..<35 {
            for model in models {
                let key = "\(model)-\(round)"
                attempted[model, default: []].append(key)
                #expect(
                    await ingestUntilAcked(writer, model: model, key: key, attempts: 30),
                    "\(key) was never acknowledged after the rejoin")
            }
        }
        let all = readers + [try RequestClient(dial: restarted.address)]
        defer { all.last?.close() }
        for model in models {
            for reader in all {
                let status = try await call(reader, statusRequest(model))
                #expect(
                    status.status.model.rows == UInt64(10 * (attempted[model]?.count ?? 0)),
                    "model \(model) after the old primary returned: \(status.status.model.rows) rows, expected \(10 * (attempted[model]?.count ?? 0))"
                )
            }
        }
    }
}
