import Actors
import Foundation
import Logging
import Synchronization
import Testing
import Wire

/// Three replicas of shard 0, each on its own RocksDB, linked in process: a replication request is
/// handed to the addressed replica's receiving method, as its node's endpoint would.
private final class Replicas: @unchecked Sendable {
    // `harnesses` is only touched by the test's own task; the link closures use `shards` and `followers`.
    let harnesses: [String: Harness]
    let shards: [String: ShardActor]
    /// Per replica: the followers it believes it has while it believes it is primary (its view of
    /// the placement); no entry: it is not the primary in its view.
    let followers = Mutex<[String: [String]]>([:])

    init(_ names: [String]) throws {
        var harnesses: [String: Harness] = [:]
        var shards: [String: ShardActor] = [:]
        for name in names {
            let harness = try Harness()
            harnesses[name] = harness
            shards[name] = try harness.shard()
        }
        self.harnesses = harnesses
        self.shards = shards
    }

    func link() async {
        for (name, shard) in shards {
            await shard.attach(
                ReplicationLink(
                    nodeID: name, ackTimeout: .seconds(1),
                    followers: { [self] _ in followers.withLock { $0[name] } },
                    send: { [self] address, request in try await deliver(request, to: address) }))
        }
    }

    private func deliver(_ request: Infranaut_V1_Request, to address: String) async throws -> Infranaut_V1_Response {
        guard let shard = shards[address] else { throw CancellationError() }
        return try await deliverInProcess(request, to: shard)
    }

    func receipts(on name: String, _ keys: [String]) async -> Set<String> {
        Set(await shards[name]!.receipts(model: "m", keys: keys).receipts.map(\.idempotencyKey))
    }
}

/// Hands a replication request to `shard` as its node's endpoint would.
func deliverInProcess(_ request: Infranaut_V1_Request, to shard: ShardActor) async throws -> Infranaut_V1_Response {
    switch request.body {
    case .replicate(let body):
        let reply = await shard.receiveReplicate(body)
        return .with { $0.replicate = reply }
    case .installSnapshot(let body):
        let reply = await shard.receiveSnapshot(body)
        return .with { $0.installSnapshot = reply }
    case .fetchSnapshot:
        let reply = await shard.snapshotForPeer()
        return .with { $0.fetchSnapshot = reply }
    default: throw CancellationError()
    }
}

@Suite("replication fencing (terms as promises)")
struct ReplicationFencingTests {
    /// A and B both believe they are the shard's primary (their views disagree) and share the
    /// follower C. B claims the shard after A wrote a1. A's next write must not be acknowledged:
    /// if it were, C would hold it only until B's history replaced C's, and an acknowledged batch
    /// would be gone.
    @Test("an old primary cannot get a write acknowledged once a new primary claimed the shared follower")
    func oldPrimaryIsFenced() async throws {
        let replicas = try Replicas(["A", "B", "C"])
        await replicas.link()
        replicas.followers.withLock { $0 = ["A": ["C"], "B": ["C"]] }
        let a = replicas.shards["A"]!, b = replicas.shards["B"]!

        let a1 = await a.ingest(request(key: "a1"))
        #expect(a1.status.code == .ok)
        // B takes over: it claims a new term on C and adopts C's state (which holds a1).
        #expect(await b.readyForReads())
        #expect(await replicas.receipts(on: "B", ["a1"]) == ["a1"])

        let a2 = await a.ingest(request(key: "a2"))
        #expect(a2.status.code != .ok, "the old primary acknowledged a write after the follower promised a newer term")
        #expect(a2.status.retryable)

        let b1 = await b.ingest(request(key: "b1"))
        #expect(b1.status.code == .ok, "\(b1.status.message)")
        // The client retries a2 through the new primary: applied once, in B's history.
        let retried = await b.ingest(request(key: "a2"))
        #expect(retried.status.code == .ok, "\(retried.status.message)")

        var acknowledged: Set<String> = ["a1", "b1", "a2"]
        if a2.status.code == .ok { acknowledged.insert("a2") }
        for replica in ["B", "C"] {
            let held = await replicas.receipts(on: replica, Array(acknowledged))
            #expect(held == acknowledged, "replica \(replica) holds \(held.sorted()) of \(acknowledged.sorted())")
        }
        let status = try #require(await b.status(model: "m"))
        #expect(status.batches == 3, "a1, b1 and a2 once each")
    }

    @Test("a promise survives a restart: the restarted follower still refuses the older primary")
    func promiseIsDurable() async throws {
        let replicas = try Replicas(["A", "B", "C"])
        await replicas.link()
        replicas.followers.withLock { $0 = ["A": ["C"], "B": ["C"]] }
        let a = replicas.shards["A"]!, b = replicas.shards["B"]!
        #expect(await a.ingest(request(key: "a1")).status.code == .ok)
        #expect(await b.readyForReads())

        // C restarts from its RocksDB (a crash: no checkpoint) and must remember B's claim.
        let harness = replicas.harnesses["C"]!
        await replicas.shards["C"]!.stop()
        try harness.crashAndReopen()
        let restarted = try harness.shard()
        let stale = await restarted.receiveReplicate(
            .with {
                $0.shard = 0
                $0.prevSequence = 1
                $0.prevTerm = 1
                $0.fromNode = "A"
                $0.term = 1
            })
        #expect(stale.outcome == .stale)
        #expect(stale.promisedTerm >= 2)
    }

    /// Two claims reach a replica at once. Whatever the interleaving of their durable writes, the
    /// replica ends up promised to the higher one and refuses the lower one afterwards.
    @Test("concurrent claims never leave a replica promised to the lower term")
    func concurrentClaims() async throws {
        let replicas = try Replicas(["C"])
        let c = replicas.shards["C"]!
        func claim(_ term: UInt64, from node: String) -> Infranaut_V1_ReplicateRequest {
            .with {
                $0.shard = 0
                $0.fromNode = node
                $0.term = term
            }
        }
        for round in 0..<20 {
            let high = UInt64(100 * (round + 1)), low = high - 1
            async let first = c.receiveReplicate(claim(high, from: "B"))
            async let second = c.receiveReplicate(claim(low, from: "A"))
            let (higher, _) = await (first, second)
            // The higher claim may have been refused as busy (its sender would retry).
            guard higher.status.code == .ok, higher.outcome == .applied else { continue }
            let late = await c.receiveReplicate(claim(low, from: "A"))
            #expect(late.outcome == .stale, "round \(round): a claim of term \(low) was accepted after term \(high)")
            #expect(late.promisedTerm == high)
        }
    }
}
