import Cluster
import Drill
import Foundation
import Testing
import Wire

/// Sends `fault` to `node`'s peer listener, sealed with the cluster secret.
private func setFault(_ node: NodeProcess, _ request: Infranaut_V1_FaultRequest) async throws
    -> Infranaut_V1_FaultResponse
{
    let response = try await askPeer(node.peerAddress, .fault(request), secret: try NodeProcess.secret)
    guard case .fault(let reply) = response.body else {
        throw NodeTestError("fault on \(node.peerAddress) answered \(response.outcome)")
    }
    return reply
}

/// How `viewer` sees the node `id`.
private func state(of id: String, seenBy viewer: NodeProcess) async throws -> Infranaut_V1_MemberState? {
    try await members(viewer).first { $0.id == id }?.state
}

private func seesCut(_ viewer: NodeProcess, _ id: String) async throws -> Bool {
    let seen = try await state(of: id, seenBy: viewer)
    return seen == .suspect || seen == .dead
}

/// A model whose shard has `primary` as its primary in `node`'s placement.
private func model(withPrimary primary: String, asking node: NodeProcess) async throws -> String {
    let client = try RequestClient(dial: node.address)
    defer { client.close() }
    let ring = try await call(
        client,
        .with {
            $0.version = 1
            $0.ring = .init()
        }
    ).ring
    for candidate in 0..<10_000 {
        let model = "fault-model-\(candidate)"
        let shard = ShardID(model: model, shardCount: ring.shards.count).rawValue
        if ring.shards[shard].replicas.first == primary { return model }
    }
    throw NodeTestError("no model has \(primary) as its primary")
}

@Suite("fault rules on real nodes", .serialized, .timeLimit(.minutes(3)))
struct FaultProcessTests {
    @Test(
        "a node told to drop its peers is cut off both ways, its client port still answers, and clearing the rules heals it"
    )
    func cutAndHeal() async throws {
        let nodes = try await startCluster(["f1", "f2", "f3"])
        let (f1, f2, f3) = (nodes[0], nodes[1], nodes[2])
        let model = try await model(withPrimary: "f1", asking: f3)

        // Through the CLI, as an operator would: rules on f3 alone cut both directions.
        let run = try await runCLI([
            "fault", "--node", f3.address, "--drop", "f1,f2", "--for", "120s", "--cluster-secret-file",
            NodeProcess.secretFile, "--json",
        ])
        #expect(run.status == 0, "fault failed: \(run.stdout) \(run.stderr)")
        let output = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "no JSON: \(run.stdout)")
        let rules = output["rules"] as? [[String: Any]] ?? []
        #expect(rules.compactMap { $0["node"] as? String } == ["f1", "f2"])
        #expect(rules.allSatisfy { $0["drop"] as? Bool == true })
        #expect((100_000...120_000).contains(output["expires_in_ms"] as? Int ?? 0), "\(output)")

        // A forward from f3 to f1 is lost: the client hears UNAVAILABLE at the forward timeout (2 s),
        // no sooner (nothing answered) and not much later (nothing hangs).
        let client = try RequestClient(dial: f3.address)
        defer { client.close() }
        let started = ContinuousClock.now
        let forwarded = try await call(client, ingestRequest(model: model, key: "cut", rows: 3), timeout: .seconds(10))
        let took = ContinuousClock.now - started
        if forwarded.outcome.message.contains("no answer from f1") {
            #expect(took >= .milliseconds(1_900) && took < .seconds(5), "the lost forward took \(took)")
        } else {
            // f3 had already declared f1 suspect or lost its majority: refused at once, still retryable.
            #expect(forwarded.outcome.retryable, "\(forwarded.outcome)")
        }
        #expect(forwarded.outcome.code == .unavailable, "\(forwarded.outcome)")

        // Both sides notice: f1 and f2 stop hearing f3, and f3 stops hearing them.
        let noticed = try await eventually(within: .seconds(20)) {
            for (viewer, id) in [(f1, "f3"), (f2, "f3"), (f3, "f1"), (f3, "f2")] where try await !seesCut(viewer, id) {
                return false
            }
            return true
        }
        #expect(noticed != nil, "the cut was not noticed on both sides within 20 s")
        // f1 and f2 still see each other alive: only f3's links are cut.
        #expect(try await state(of: "f2", seenBy: f1) == .alive)

        let cleared = try await setFault(f3, .with { $0.clear = true })
        #expect(cleared.status.code == .ok)
        #expect(cleared.rules.isEmpty && cleared.expiresInMs == 0)
        #expect(cleared.framesDropped > 0, "f3 dropped no frame while cut off")

        let healed = try await eventually(within: .seconds(45)) { try await allSeeAlive(nodes.map(\.address)) }
        #expect(healed != nil, "f3 did not come back alive everywhere after the rules were cleared")
        #expect(await ingestUntilAcked(client, model: model, key: "after-heal", rows: 3, attempts: 50))
    }

    @Test("fault rules expire by themselves")
    func rulesExpire() async throws {
        let nodes = try await startCluster(["e1", "e2", "e3"])
        let (e1, e3) = (nodes[0], nodes[2])
        let set = try await setFault(
            e3,
            .with {
                $0.drop = ["e1", "e2"]
                $0.expireAfterMs = 8_000
            })
        #expect(set.status.code == .ok, "\(set.status)")
        #expect(set.expiresInMs <= 8_000 && set.expiresInMs > 6_000)
        let noticed = try await eventually(within: .seconds(8)) { try await seesCut(e1, "e3") }
        #expect(noticed != nil, "e1 did not notice that e3 was cut off before the rules expired")
        let back = try await eventually(within: .seconds(45)) { try await allSeeAlive(nodes.map(\.address)) }
        #expect(back != nil, "e3 did not come back after its rules expired")
        let log = try String(contentsOfFile: e3.logPath, encoding: .utf8)
        #expect(log.contains("fault rules expired"), "e3's log does not say its rules expired")
    }

    @Test("a delayed peer's frames arrive late but arrive: gossip keeps it alive, forwards take the delay both ways")
    func delay() async throws {
        let nodes = try await startCluster(["d1", "d2", "d3"])
        let (d1, d3) = (nodes[0], nodes[2])
        let model = try await model(withPrimary: "d1", asking: d3)
        // The batch below is sent once: its group must have settled (d1 leading), or a leadership
        // move on a fresh cluster can outlast the 2 s forward on its own.
        let roles = try await replicaRoles(of: model, asking: d3.address)
        #expect(roles.primary == d1.address)
        let client = try RequestClient(dial: d3.address)
        defer { client.close() }
        #expect(await ingestUntilAcked(client, model: model, key: "warm", rows: 3))

        let set = try await setFault(
            d3,
            .with {
                $0.delay = ["d1"]
                $0.delayMs = 200
                $0.expireAfterMs = 60_000
            })
        #expect(set.status.code == .ok, "\(set.status)")
        #expect(set.rules.map(\.node) == ["d1"] && set.rules.first?.delayMs == 200 && set.rules.first?.drop == false)
        let ruleSet = ContinuousClock.now

        // The forward to d1 waits 200 ms on the way out and 200 ms for the reply.
        let started = ContinuousClock.now
        let reply = try await call(client, ingestRequest(model: model, key: "slow", rows: 3), timeout: .seconds(10))
        #expect(reply.ingest.status.code == .ok, "\(reply.outcome)")
        #expect(ContinuousClock.now - started >= .milliseconds(400))

        // d1 hears from d3 directly after the rule was set (delayed gossip is delivered, not lost).
        let heard = try await eventually(within: .seconds(20)) {
            let since = ContinuousClock.now - ruleSet
            guard let d3Seen = try await members(d1).first(where: { $0.id == "d3" }) else { return false }
            return d3Seen.state == .alive && .milliseconds(Int(d3Seen.lastHeardMsAgo)) + .milliseconds(250) < since
        }
        #expect(heard != nil, "d1 did not hear from d3 after the delay rule was set")
        let cleared = try await setFault(d3, .with { $0.clear = true })
        #expect(cleared.framesDelayed > 0)
        #expect(cleared.framesDropped == 0)
    }

    @Test(
        "a forwarded write held up on the way past its deadline is dropped unserved and counted, and a retry applies it once"
    )
    func expiredForwardIsDropped() async throws {
        let nodes = try await startCluster(["x1", "x2", "x3"])
        let (x1, x3) = (nodes[0], nodes[2])
        let model = try await model(withPrimary: "x3", asking: x1)
        // x3 leads the model's group, so x1 (a follower) forwards writes for it to x3.
        let roles = try await replicaRoles(of: model, asking: x1.address)
        #expect(roles.primary == x3.address)
        let client = try RequestClient(dial: x1.address)
        defer { client.close() }
        #expect(await ingestUntilAcked(client, model: model, key: "warm", rows: 3))

        // Frames from x1 reach x3's handler 2.5 s late: longer than the 2 s x1 waits for a forward.
        let set = try await setFault(
            x3,
            .with {
                $0.delay = ["x1"]
                $0.delayMs = 2_500
                $0.expireAfterMs = 60_000
            })
        #expect(set.status.code == .ok, "\(set.status)")
        let late = try await call(client, ingestRequest(model: model, key: "late", rows: 3), timeout: .seconds(20))
        #expect(late.ingest.status.code != .ok, "the forward should have timed out: \(late.outcome)")
        let counted = try await eventually(within: .seconds(20)) {
            try await askPeer(x3.peerAddress, .members(.init()), secret: try NodeProcess.secret).members.refused.expired
                > 0
        }
        #expect(counted != nil, "x3 did not count the expired forward")
        _ = try await setFault(x3, .with { $0.clear = true })

        // Not applied at x3: the leader holds no receipt for it.
        let direct = try RequestClient(dial: x3.address)
        defer { direct.close() }
        let receipts = try await call(
            direct,
            .with {
                $0.version = 1
                $0.receipts = .with {
                    $0.modelID = model
                    $0.idempotencyKeys = ["warm", "late"]
                }
            })
        #expect(receipts.receipts.status.code == .ok, "\(receipts.outcome)")
        #expect(receipts.receipts.receipts.map(\.idempotencyKey) == ["warm"])
        #expect(receipts.receipts.modelBatches == 1)
        // The client's retry with the same key is applied, once.
        #expect(await ingestUntilAcked(client, model: model, key: "late", rows: 3))
        let after = try await call(direct, statusRequest(model)).status.model
        #expect(after.rows == 6 && after.batches == 2, "\(after)")
    }

    @Test("a request from a dropped node gets no reply at all, while other senders are answered")
    func droppedSenderGetsNoReply() async throws {
        let node = NodeProcess(arguments: ["--node-id", "r1"])
        try await node.start()
        let set = try await setFault(node, .with { $0.drop = ["r2"] })
        #expect(set.status.code == .ok, "\(set.status)")
        let members =
            try Infranaut_V1_Request.with {
                $0.version = 1
                $0.members = .init()
            }.serializedBytes() as [UInt8]
        let peerPort = try RequestClient(dial: node.peerAddress)
        defer { peerPort.close() }
        // r2 holds the secret (it is a node of the cluster), but r1 drops what it sends.
        let r2 = PeerSeal(secret: try NodeProcess.secret, sender: "r2")
        await #expect(throws: TransportError.timedOut(operation: "request to \(node.peerAddress)")) {
            try await peerPort.request(r2.seal(members, channel: .request).bytes, timeout: .milliseconds(500))
        }
        let admin = PeerSeal(secret: try NodeProcess.secret, sender: "admin-test")
        let (frame, header) = admin.seal(members, channel: .request)
        let answer = try await peerPort.request(frame, timeout: .seconds(5))
        #expect(
            try Infranaut_V1_Response(serializedBytes: Array(admin.openReply(answer, to: header).body)).members.status
                .code
                == .ok)

        #expect(try await setFault(node, .with { $0.clear = true }).status.code == .ok)
        let (again, againHeader) = r2.seal(members, channel: .request)
        let reply = try await peerPort.request(again, timeout: .seconds(5))
        #expect(
            try Infranaut_V1_Response(serializedBytes: Array(r2.openReply(reply, to: againHeader).body)).members.status
                .code
                == .ok)
    }

    @Test("bad fault requests are refused with a reason, and fault is refused on the client port")
    func badRequests() async throws {
        let node = NodeProcess(arguments: ["--node-id", "b1"])
        try await node.start()
        let clientPort = try RequestClient(dial: node.address)
        defer { clientPort.close() }
        let onClient = try await call(
            clientPort,
            .with {
                $0.version = 1
                $0.fault = .with { $0.drop = ["b2"] }
            })
        #expect(onClient.outcome.code == .permissionDenied, "\(onClient.outcome)")
        #expect(onClient.outcome.message.contains("fault"))

        let cases: [(Infranaut_V1_FaultRequest, String)] = [
            (.with { $0.drop = ["b1"] }, "cannot cut itself off"),
            (.init(), "names no node"),
            (.with { $0.delay = ["b2"] }, "the delay must be 1 to 10000 ms"),
            (
                .with {
                    $0.clear = true
                    $0.drop = ["b2"]
                }, "clear removes every rule"
            ),
            (
                .with {
                    $0.drop = ["b2"]
                    $0.expireAfterMs = 3_600_001
                }, "1 to 3600000 ms"
            ),
        ]
        for (request, says) in cases {
            let reply = try await setFault(node, request)
            #expect(reply.status.code == .invalidArgument, "\(request) answered \(reply.status)")
            #expect(reply.status.message.contains(says), "\(reply.status.message)")
            #expect(reply.rules.isEmpty, "a refused request changed the rules")
        }

        // The CLI checks what it can before it asks.
        let together = try await runCLI([
            "fault", "--node", node.address, "--delay", "b2", "--cluster-secret-file", NodeProcess.secretFile,
        ])
        #expect(together.status == 64 && together.stderr.contains("--delay and --delay-ms go together"))
        let badFor = try await runCLI([
            "fault", "--node", node.address, "--drop", "b2", "--for", "soon", "--cluster-secret-file",
            NodeProcess.secretFile,
        ])
        #expect(badFor.status == 64 && badFor.stderr.contains("--for soon is not a positive duration"))
        let noSecret = try await runCLI(["fault", "--node", node.address, "--clear"])
        #expect(noSecret.status == 1 && noSecret.stderr.contains("needs the cluster secret"), "\(noSecret.stderr)")
    }
}
