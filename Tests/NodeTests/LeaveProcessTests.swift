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
    /// With replication factor 3 on four nodes, every group n2 is a voter of must replace it with the
    /// fourth node. `leave` must not return (and n2 must not exit) before every such group did,
    /// even with no writes after it: afterwards the three remaining nodes each hold every batch.
    @Test("a node that leaves hands its shards off: afterwards the three remaining nodes hold every acknowledged batch")
    func leaveHandsOff() async throws {
        let nodes = try await startCluster(["n0", "n1", "n2", "n3"])
        let (n0, n1, n2, n3) = (nodes[0], nodes[1], nodes[2], nodes[3])

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
        // Every group n0 is a voter of knows its leader, as n0 sees it.
        // Waited on, not timed: with the other process suites (drills, windows, specs) running
        // beside it, elections on 4 nodes sharing two cores took over 30 s in one full run.
        let led = try await eventually(within: .seconds(90)) {
            let ring = try await call(
                client,
                .with {
                    $0.version = 1
                    $0.ring = .init()
                }
            ).ring
            return ring.shards.filter { $0.voters.contains("n0") }.allSatisfy { !$0.leader.isEmpty && $0.term > 0 }
        }
        #expect(led != nil, "some group n0 is a voter of shows no leader in `ring`")
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

        // Replication factor 3 on three nodes: every shard is on each. No write happened since the
        // leave, so only the groups' reconfiguration can have put n2's shards on n3.
        for model in models {
            let expected = Set(keys[model] ?? [])
            for node in [n0, n1, n3] {
                let local = try await localReceipts(node, model: model, keys: Array(expected))
                #expect(
                    local == expected, "\(node.address) holds \(local.count) of \(expected.count) batches of \(model)")
            }
        }
    }

    /// After a crash, the groups the dead node was a voter of replace it with the fourth node once
    /// the membership declares it dead. With no write after the crash, only that reconfiguration can
    /// bring the new voter up to date.
    @Test("after kill -9 of a node, idle shards are copied to their new replicas without any write, by snapshot")
    func idleShardsReReplicate() async throws {
        // Checkpoints keep no log behind them: a new replica can only get its state as a snapshot.
        let nodes = try await startCluster(
            ["n0", "n1", "n2", "n3"], arguments: ["--checkpoint-interval-ms", "200", "--log-retained-entries", "0"])
        let (n0, n1, n2, n3) = (nodes[0], nodes[1], nodes[2], nodes[3])
        let client = try RequestClient(dial: n0.address)
        defer { client.close() }
        let models = (0..<16).map { "idle-model-\($0)" }
        for model in models {
            try #require(await ingestUntilAcked(client, model: model, key: "\(model)-k", rows: 5))
        }
        n2.kill(SIGKILL)
        let copied = try await eventually(within: .seconds(45)) {
            for model in models {
                for node in [n0, n1, n3]
                where try await localReceipts(node, model: model, keys: ["\(model)-k"]).isEmpty {
                    return false
                }
            }
            return true
        }
        #expect(copied != nil, "some shard n2 held is on fewer than three nodes 45 s after the crash")
        let n3Log = try String(contentsOfFile: n3.logPath, encoding: .utf8)
        #expect(n3Log.contains("installed a snapshot"), "n3 caught up without any snapshot")
    }

    /// With replication factor 1 the leaving node holds the only copy of its shards: its groups
    /// must add the new replica, hand it leadership and only then drop the leaving node.
    @Test("with replication factor 1, a leaving node's shards are adopted by their new replicas")
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
