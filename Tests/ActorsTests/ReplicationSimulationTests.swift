import Actors
import Foundation
import Logging
import Monitoring
import Synchronization
import Testing
import Wire

/// A small deterministic-schedule, randomized test of replication with fencing: three replicas of
/// shard 0 (real RocksDB each, linked in process), whose views of who is alive change at random
/// and disagree, with writes through whichever node believes it is primary (sometimes two at
/// once), crashes (the database closed without a checkpoint, then reopened) and anti-entropy
/// sweeps. Views follow the placement rule: rank A > B > C, the primary is the first node a view
/// counts alive, the follower the next, and a node writes only while its view has a majority.
///
/// At the end every view agrees and A sweeps; then every acknowledged key must be in A's and B's
/// receipts, and no key may have been applied twice.
private final class Cluster: @unchecked Sendable {
    // `harnesses` is only touched by the test's task; the link closures read `shards` and `views`.
    let names = ["A", "B", "C"]
    var harnesses: [String: Harness] = [:]
    let shards = Mutex<[String: ShardActor]>([:])
    /// Per node: the nodes it counts alive (itself always).
    let views = Mutex<[String: Set<String>]>([:])

    init() throws {
        for name in names {
            let harness = try Harness()
            harnesses[name] = harness
        }
        views.withLock { views in for name in names { views[name] = Set(names) } }
    }

    func start(_ name: String) async throws {
        let shard = try harnesses[name]!.shard()
        await shard.attach(
            ReplicationLink(
                nodeID: name, ackTimeout: .milliseconds(300),
                followers: { [self] _ in followers(of: name) },
                send: { [self] address, request in try await deliver(request, to: address) }))
        shards.withLock { $0[name] = shard }
    }

    func shard(_ name: String) -> ShardActor { shards.withLock { $0[name]! } }

    /// The placement in `name`'s view: nil when `name` is not its primary (or sees no majority).
    func followers(of name: String) -> [String]? {
        let alive = views.withLock { $0[name] ?? [] }
        guard alive.count >= 2 else { return nil }
        let ranked = names.filter { alive.contains($0) }
        guard ranked.first == name else { return nil }
        return Array(ranked.dropFirst().prefix(1))
    }

    private func deliver(_ request: Infranaut_V1_Request, to address: String) async throws -> Infranaut_V1_Response {
        guard let shard = shards.withLock({ $0[address] }) else { throw CancellationError() }
        return try await deliverInProcess(request, to: shard)
    }

    func crashAndRestart(_ name: String) async throws {
        shards.withLock { $0[name] = nil }
        try harnesses[name]!.crashAndReopen()
        try await start(name)
    }
}

@Suite("replication under random views, crashes and concurrent primaries", .serialized)
struct ReplicationSimulationTests {
    @Test("no acknowledged write is lost and none is applied twice", arguments: Array(1...8) as [UInt64])
    func randomSchedules(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let cluster = try Cluster()
        for name in cluster.names { try await cluster.start(name) }
        var acknowledged: Set<String> = []
        var attempted: [String] = []
        var next = 0

        func write(through name: String) async -> (String, Bool) {
            let key = "k\(next)"
            next += 1
            attempted.append(key)
            let reply = await cluster.shard(name).ingest(request(key: key, rows: 2))
            return (key, reply.status.code == .ok)
        }

        for _ in 0..<120 {
            switch Int.random(in: 0..<10, using: &random) {
            case 0...1:
                // A node's view changes: it counts a random set of the others alive.
                let name = cluster.names.randomElement(using: &random)!
                let others = cluster.names.filter { $0 != name && Bool.random(using: &random) }
                cluster.views.withLock { $0[name] = Set(others + [name]) }
            case 2:
                // Views heal.
                cluster.views.withLock { views in for name in cluster.names { views[name] = Set(cluster.names) } }
            case 3:
                let name = cluster.names.randomElement(using: &random)!
                try await cluster.crashAndRestart(name)
            case 4:
                for name in cluster.names { await cluster.shard(name).sweepFollowers() }
            case 5...6:
                // Two nodes that may both believe they are primary write at the same time.
                let pair = Array(cluster.names.shuffled(using: &random).prefix(2))
                let keys = ["k\(next)", "k\(next + 1)"]
                next += 2
                attempted += keys
                let a = cluster.shard(pair[0]), b = cluster.shard(pair[1])
                async let first = a.ingest(request(key: keys[0], rows: 2))
                async let second = b.ingest(request(key: keys[1], rows: 2))
                let replies = await [first, second]
                for (key, reply) in zip(keys, replies) where reply.status.code == .ok { acknowledged.insert(key) }
            default:
                let name = cluster.names.randomElement(using: &random)!
                let (key, ok) = await write(through: name)
                if ok { acknowledged.insert(key) }
            }
        }

        // Heal, let A (first in rank) take the shard and bring B up to date.
        cluster.views.withLock { views in for name in cluster.names { views[name] = Set(cluster.names) } }
        for _ in 0..<5 { await cluster.shard("A").sweepFollowers() }
        #expect(await cluster.shard("A").readyForReads())

        for holder in ["A", "B"] {
            let receipts = await cluster.shard(holder).receipts(model: "m", keys: attempted)
            let held = Set(receipts.receipts.map(\.idempotencyKey))
            let missing = acknowledged.subtracting(held)
            #expect(missing.isEmpty, "seed \(seed): \(holder) lacks acknowledged \(missing.sorted())")
            #expect(
                receipts.modelBatches == UInt64(held.count),
                "seed \(seed): \(holder) applied \(receipts.modelBatches) batches for \(held.count) keys")
        }
        #expect(
            acknowledged.count > 5,
            "seed \(seed): only \(acknowledged.count) writes were acknowledged; the schedule tests little")
    }
}
