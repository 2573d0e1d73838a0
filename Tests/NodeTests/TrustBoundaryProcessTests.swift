import Cluster
import Drill
import Foundation
import Testing
import Wire

/// The attack an independent client once made with a forged snapshot, in today's protocol: Raft
/// messages for the model's shard with a huge term: an append that would replace the log from
/// index 1 and claim it committed, and a vote request that would depose the leader.
private func forgedSnapshot(shard: UInt32) -> Infranaut_V1_Request {
    .with {
        $0.version = 1
        $0.hops = 1
        $0.raft = .with {
            $0.messages = [
                .with {
                    $0.shard = shard
                    $0.message = .with {
                        $0.from = "mallory"
                        $0.term = 1 << 60
                        $0.append = .with {
                            $0.prevIndex = 0
                            $0.prevTerm = 0
                            $0.commit = 1 << 40
                            $0.entries = [
                                .with {
                                    $0.term = 1 << 60
                                    $0.index = 1
                                    $0.noop = true
                                }
                            ]
                        }
                    }
                },
                .with {
                    $0.shard = shard
                    $0.message = .with {
                        $0.from = "mallory"
                        $0.term = 1 << 61
                        $0.requestVote = .with {
                            $0.lastIndex = 1 << 40
                            $0.lastTerm = 1 << 61
                            $0.transfer = true
                        }
                    }
                },
            ]
        }
    }
}

private func send(_ address: String, _ bytes: [UInt8]) async throws -> [UInt8] {
    let client = try RequestClient(dial: address)
    defer { client.close() }
    return try await client.request(bytes, timeout: .seconds(5))
}

private func refusedCounts(_ node: NodeProcess) async throws -> Infranaut_V1_RefusalCounts {
    let client = try RequestClient(dial: node.address)
    defer { client.close() }
    return try await call(
        client,
        .with {
            $0.version = 1
            $0.members = .init()
        }
    ).members.refused
}

private func otherSecret() throws -> ClusterSecret {
    try ClusterSecret(Array("not-the-cluster-secret-at-all".utf8), source: "test")
}

@Suite("trust boundary: clients and strangers cannot send peer traffic", .serialized, .timeLimit(.minutes(3)))
struct TrustBoundaryProcessTests {
    @Test("forged raft messages sent to the client and peer ports of every node leave acknowledged data intact")
    func forgedSnapshotIsRefused() async throws {
        let nodes = try await startCluster(["t1", "t2", "t3"])
        let client = try RequestClient(dial: nodes[0].address)
        defer { client.close() }
        let model = "trust-model"
        for batch in 0..<10 {
            #expect(await ingestUntilAcked(client, model: model, key: "k\(batch)", rows: 10))
        }
        let ring = try await call(
            client,
            .with {
                $0.version = 1
                $0.ring = .with { $0.modelID = model }
            }
        ).ring
        let forged = try forgedSnapshot(shard: ring.modelShard).serializedBytes() as [UInt8]

        for node in nodes {
            // Client port: the plain frame, and a frame sealed with a wrong secret.
            let plain = try Infranaut_V1_Response(serializedBytes: try await send(node.address, forged))
            #expect(plain.outcome.code == .permissionDenied, "client port answered \(plain.outcome)")
            // Peer port: unsealed, sealed with another secret, and with the gossip port for good measure.
            let unsealed = try Infranaut_V1_Response(serializedBytes: try await send(node.peerAddress, forged))
            #expect(unsealed.outcome.code == .permissionDenied, "peer port answered \(unsealed.outcome)")
            let stranger = PeerSeal(secret: try otherSecret(), sender: "t1")
            let wrongSecret = try Infranaut_V1_Response(
                serializedBytes: try await send(node.peerAddress, stranger.seal(forged, channel: .request).bytes))
            #expect(wrongSecret.outcome.code == .permissionDenied)
            #expect(wrongSecret.outcome.message.contains("MAC"))
            let gossip = try MailboxSender(dial: node.clusterAddress)
            try await gossip.send(stranger.seal(forged, channel: .gossip).bytes, timeout: .seconds(2))
            gossip.close()
        }

        // Each node counted what it refused, and every acknowledged row is still there.
        for node in nodes {
            // The gossip frame is refused asynchronously: wait until both bad MACs are counted.
            #expect(try await eventually(within: .seconds(10)) { try await refusedCounts(node).badMac >= 2 } != nil)
            let counts = try await refusedCounts(node)
            #expect(counts.peerBodyOnClient >= 1)
            #expect(counts.notSealed >= 1)
            let reader = try RequestClient(dial: node.address)
            let status = try await call(reader, statusRequest(model))
            reader.close()
            #expect(status.status.status.code == .ok)
            #expect(status.status.model.rows == 100, "node \(node.address) sees \(status.status.model.rows) rows")
        }
        #expect(
            try String(contentsOfFile: nodes[0].logPath, encoding: .utf8).contains(
                "refused a peer-only request on the client listener"))
    }

    @Test("every peer-only request is refused on the client port with PERMISSION_DENIED")
    func peerBodiesOnClientPort() async throws {
        let node = NodeProcess()
        try await node.start()
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        let bodies: [Infranaut_V1_Request.OneOf_Body] = [
            .raft(.with { $0.messages = [.with { $0.shard = 0 }] }), .raftSnapshot(.init()), .deliverEvent(.init()),
            .leave(.init()), .fault(.with { $0.drop = ["n2"] }),
            .publishEvent(
                .with {
                    $0.event = .with {
                        $0.id = "e"
                        $0.kind = "alert"
                    }
                }),
            .receipts(
                .with {
                    $0.modelID = "m"
                    $0.idempotencyKeys = ["k"]
                    $0.local = true
                }),
            .listModels(.with { $0.local = true }),
        ]
        for body in bodies {
            let response = try await call(
                client,
                .with {
                    $0.version = 1
                    $0.body = body
                })
            #expect(response.outcome.code == .permissionDenied, "\(body) answered \(response.outcome)")
            #expect(!response.outcome.retryable)
        }
        // A client may not mark its own request as forwarded either.
        var forwarded = ingestRequest(model: "m", key: "k", rows: 1)
        forwarded.hops = 1
        #expect(try await call(client, forwarded).outcome.code == .permissionDenied)
        #expect(try await refusedCounts(node).peerBodyOnClient == UInt64(bodies.count + 1))
    }

    @Test(
        "a sealed frame is accepted once: a replay of it, or a frame sealed with another secret, is refused and counted"
    )
    func replayIsRefused() async throws {
        let node = NodeProcess()
        try await node.start()
        let seal = PeerSeal(secret: try NodeProcess.secret, sender: "admin-replay-test")
        let members =
            try Infranaut_V1_Request.with {
                $0.version = 1
                $0.members = .init()
            }.serializedBytes() as [UInt8]
        let (frame, header) = seal.seal(members, channel: .request)
        let first = try await send(node.peerAddress, frame)
        let answer = try Infranaut_V1_Response(serializedBytes: Array(try seal.openReply(first, to: header).body))
        #expect(answer.members.status.code == .ok)

        let replay = try Infranaut_V1_Response(serializedBytes: try await send(node.peerAddress, frame))
        #expect(replay.outcome.code == .permissionDenied)
        #expect(replay.outcome.message.contains("replay"))
        // A reply frame sent back as a request is on the wrong channel.
        let reflected = try Infranaut_V1_Response(serializedBytes: try await send(node.peerAddress, first))
        #expect(reflected.outcome.code == .permissionDenied)
        let counts = try await refusedCounts(node)
        #expect(counts.replayed == 1)
        #expect(counts.wrongChannel == 1)
    }

    @Test("a node without the cluster's secret cannot join, and says why")
    func strangerCannotJoin() async throws {
        let seed = NodeProcess(arguments: ["--node-id", "seed"])
        try await seed.start()
        // No secret at all: refused at start, with the reason.
        let data = TestScratch.track(
            FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-nosecret-\(UUID().uuidString)")
                .path)
        let noSecret = try await runCLI([
            "start", "--data-dir", data, "--client-listen", "tcp://127.0.0.1:0", "--cluster-listen",
            "tcp://127.0.0.1:0",
            "--peer-listen", "tcp://127.0.0.1:0", "--http-listen", "off", "--seed", seed.clusterAddress,
        ])
        #expect(noSecret.status != 0)
        #expect(noSecret.stderr.contains("needs the cluster's secret"), "stderr: \(noSecret.stderr)")

        // Another secret: it starts, the seed refuses its gossip and tells it, and it never joins.
        let wrongFile = TestScratch.track(
            FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-wrong-secret-\(UUID().uuidString)")
                .path)
        try writeClusterSecret(to: wrongFile)
        let stranger = NodeProcess(arguments: [
            "--node-id", "stranger", "--seed", seed.clusterAddress, "--cluster-secret-file", wrongFile,
        ])
        try await stranger.start()
        let told = try await eventually(within: .seconds(15)) {
            try String(contentsOfFile: stranger.logPath, encoding: .utf8).contains("a node refused this node's gossip")
        }
        #expect(told != nil, "the stranger's log does not say why it cannot join")
        #expect(try await members(seed).allSatisfy { $0.id != "stranger" })
        #expect(try await refusedCounts(seed).badMac > 0)
    }

    @Test("a node of another shard count cannot join: both sides refuse its gossip, and it is told the flags that fit")
    func otherShapeCannotJoin() async throws {
        let seed = NodeProcess(arguments: ["--node-id", "seed", "--shards", "64"])
        try await seed.start()
        // The same secret (every test node gets it) but another shard count.
        let other = NodeProcess(arguments: ["--node-id", "other", "--seed", seed.clusterAddress, "--shards", "128"])
        try await other.start()
        let told = try await eventually(within: .seconds(15)) {
            try String(contentsOfFile: other.logPath, encoding: .utf8).contains("--shards 64")
        }
        #expect(told != nil, "the other node's log does not say which shard count the cluster has")
        let seedLog = try String(contentsOfFile: seed.logPath, encoding: .utf8)
        #expect(
            seedLog.contains("refused gossip from a node of another cluster shape"),
            "seed log: \(seedLog.suffix(2_000))")
        #expect(try await members(seed).map(\.id) == ["seed"])
        #expect(try await members(other).map(\.id) == ["other"])
    }
}
