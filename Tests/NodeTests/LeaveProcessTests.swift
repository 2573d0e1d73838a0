import Cluster
import Drill
import Foundation
import Testing
import Wire

/// The receipts `node`'s own copy holds for `keys` (`local`: not forwarded to the primary).
private func localReceipts(_ node: NodeProcess, model: String, keys: [String]) async throws -> Set<String> {
    // A local read skips forwarding, so it is for peers only: the peer listener, sealed.
    let response = try await askPeer(
        node.peerAddress,
        .receipts(
            .with {
                $0.local = true
                $0.modelID = model
                $0.idempotencyKeys = keys
            }), secret: try NodeProcess.secret)
    guard case .receipts(let receipts) = response.body, receipts.status.code == .ok else {
        throw NodeTestError("receipts from \(node.peerAddress): \(response.outcome.message)")
    }
    return Set(receipts.receipts.map(\.idempotencyKey))
}

@Suite("leave with hand-off", .serialized, .timeLimit(.minutes(3)))
struct LeaveProcessTests {
    /// With replication factor 2, a shard whose replicas were n2 and one other node has a single
    /// copy once n2 is gone, until the new follower receives it. `leave` must not return (and n2
    /// must not exit) before that happened for every shard n2 held, even with no writes after it.
    @Test("a node that leaves hands its shards off: afterwards both remaining nodes hold every acknowledged batch")
    func leaveHandsOff() async throws {
        let nodes = try await startCluster(["n0", "n1", "n2"])
        let (n0, n1, n2) = (nodes[0], nodes[1], nodes[2])

        let client = try RequestClient(dial: n0.address)
        defer { client.close() }
        let models = (0..<16).map { "leave-model-\($0)" }
        var keys: [String: [String]] = [:]
        for model in models {
            for batch in 0..<3 {
                let key = "\(model)-\(batch)"
                try #require(
                    await ingestUntilAcked(client, model: model, key: key, rows: 5), "batch \(key) was not acknowledged"
                )
                keys[model, default: []].append(key)
            }
        }
        // Every shard n0 holds has a writer with a term, as n0 knows it (the sweep claims idle ones).
        let claimed = try await eventually(within: .seconds(10)) {
            let ring = try await call(
                client,
                .with {
                    $0.version = 1
                    $0.ring = .init()
                }
            ).ring
            return ring.shards.filter { $0.replicas.contains("n0") }.allSatisfy { $0.term > 0 }
        }
        #expect(claimed != nil, "some shard n0 holds shows no term in `ring`")
        let heldByN2 = try await members(n0).first { $0.id == "n2" }
        let n2Shards = (heldByN2?.primaries.count ?? 0) + (heldByN2?.followers.count ?? 0)
        #expect(n2Shards > 0)

        let run = try await runCLI([
            "leave", "--node", n2.address, "--cluster-secret-file", NodeProcess.secretFile, "--json",
        ])
        #expect(run.status == 0, "leave failed: \(run.stdout) \(run.stderr)")
        let output = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            "no JSON: \(run.stdout) \(run.stderr)")
        let held = output["shards_held"] as? Int ?? -1
        #expect(held > 0, "n2 held no shard with data: \(output)")
        #expect(output["shards_handed_off"] as? Int == held)

        let exited = try await eventually(within: .seconds(15)) { !(n2.process?.isRunning ?? false) }
        #expect(exited != nil, "n2 did not exit after leaving")
        #expect(n2.process?.terminationStatus == 0)
        let view = try await members(n0)
        #expect(view.first { $0.id == "n2" }?.state == .left)
        // Clients built before `state` existed still read the deprecated string.
        #expect(
            view.allSatisfy { $0.status == "\($0.state)" },
            "status and state disagree: \(view.map { ($0.status, $0.state) })")

        // Replication factor 2 on two nodes: every shard is on both. No write happened since the
        // leave, so only the hand-off can have put n2's shards on their new follower.
        for model in models {
            let expected = Set(keys[model] ?? [])
            for node in [n0, n1] {
                let local = try await localReceipts(node, model: model, keys: Array(expected))
                #expect(
                    local == expected, "\(node.address) holds \(local.count) of \(expected.count) batches of \(model)")
            }
        }
    }

    /// After a crash, the shards the dead node held get a new follower. With no write after the
    /// crash, only the primaries' periodic sweep can bring that follower up to date.
    @Test("after kill -9 of a node, idle shards are copied to their new followers without any write")
    func idleShardsReReplicate() async throws {
        let nodes = try await startCluster(["n0", "n1", "n2"])
        let (n0, n1, n2) = (nodes[0], nodes[1], nodes[2])
        let client = try RequestClient(dial: n0.address)
        defer { client.close() }
        let models = (0..<16).map { "idle-model-\($0)" }
        for model in models {
            try #require(await ingestUntilAcked(client, model: model, key: "\(model)-k", rows: 5))
        }
        n2.kill(SIGKILL)
        let copied = try await eventually(within: .seconds(30)) {
            for model in models {
                for node in [n0, n1] where try await localReceipts(node, model: model, keys: ["\(model)-k"]).isEmpty {
                    return false
                }
            }
            return true
        }
        #expect(copied != nil, "some shard n2 held is still on one node 30 s after the crash")
    }

    /// With replication factor 1 the leaving node holds the only copy of its shards: the new
    /// primary must take it from the leaving node itself.
    @Test("with replication factor 1, a leaving node's shards are adopted by their new primaries")
    func leaveWithSingleReplica() async throws {
        let nodes = try await startCluster(["s0", "s1", "s2"], arguments: ["--replication-factor", "1"])
        let client = try RequestClient(dial: nodes[0].address)
        defer { client.close() }
        let models = (0..<16).map { "single-model-\($0)" }
        for model in models {
            try #require(await ingestUntilAcked(client, model: model, key: "\(model)-k", rows: 5))
        }
        // Writes keep coming through s0 while s2 leaves: none acknowledged may be lost, and the
        // new owners must not start histories of their own next to s2's.
        let rounds = Locked(0)
        let writer = Task { () -> [String: [String]] in
            var acknowledged: [String: [String]] = [:]
            var round = 0
            while !Task.isCancelled {
                for model in models {
                    let key = "\(model)-during-\(round)"
                    if let reply = try? await call(
                        client, ingestRequest(model: model, key: key, rows: 5), timeout: .seconds(3)),
                        reply.outcome.code == .ok
                    {
                        acknowledged[model, default: []].append(key)
                    }
                }
                round += 1
                rounds.update { $0 = round }
            }
            return acknowledged
        }
        let run = try await runCLI([
            "leave", "--node", nodes[2].address, "--cluster-secret-file", NodeProcess.secretFile, "--json",
        ])
        #expect(run.status == 0, "leave failed: \(run.stdout) \(run.stderr)")
        let exited = try await eventually(within: .seconds(15)) { !(nodes[2].process?.isRunning ?? false) }
        #expect(exited != nil)
        // Keep writing until one whole round over every model has run after s2 exited.
        let roundAtExit = rounds.value
        let wroteAfter = try await eventually(within: .seconds(60)) { rounds.value >= roundAtExit + 2 }
        #expect(wroteAfter != nil, "the writer did not complete a round after s2 exited")
        writer.cancel()
        let during = await writer.value
        #expect(during.values.reduce(0) { $0 + $1.count } > 0, "no write was acknowledged during the leave")
        for model in models {
            let keys = ["\(model)-k"] + (during[model] ?? [])
            let reply = try await call(
                client,
                .with {
                    $0.version = 1
                    $0.receipts = .with {
                        $0.modelID = model
                        $0.idempotencyKeys = keys
                    }
                })
            #expect(
                Set(reply.receipts.receipts.map(\.idempotencyKey)) == Set(keys), "\(model): \(reply.outcome.message)")
            #expect(reply.receipts.modelRows == UInt64(5 * keys.count))
        }
    }

    @Test("the only node of a cluster refuses to leave: its data would have nowhere to go")
    func lastNodeRefuses() async throws {
        let node = NodeProcess()
        try await node.start()
        defer { node.kill() }
        let run = try await runCLI(["leave", "--node", node.address, "--cluster-secret-file", NodeProcess.secretFile])
        #expect(run.status != 0)
        #expect(run.stderr.contains("only live member"), "\(run.stderr)")
        #expect(node.process?.isRunning == true)
    }
}
