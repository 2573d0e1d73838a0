import Actors
import Cluster
import Foundation
import Logging
import Storage
import Synchronization
import Testing
import Wire

/// A real RocksDB in a temporary directory with shards on top, reopenable to test recovery. Each
/// shard is the only voter of its Raft group (a single node), driven by a real ticker.
final class Harness: @unchecked Sendable {
    // Safe: the tests touch the harness from one task at a time; `live` is locked.
    let directory: String
    var database: Database!
    var writer: GroupCommitWriter!
    var store: ShardStore!
    var settings = ShardSettings()
    static let shardCount = 4
    private let live = LiveShards()
    private var ticking: Task<Void, Never>?

    /// - Parameter bootstrap: found every shard's group with "n1" as its only voter; without it
    ///   the store is empty, as a new replica's is before its first snapshot.
    init(bootstrap: Bool = true) throws {
        directory = TestScratch.track(
            FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-shard-\(UUID().uuidString)").path)
        settings.raft = RaftSettings(electionTimeout: .milliseconds(300), heartbeatInterval: .milliseconds(50))
        outbound = bootstrap ? NoPeers() : Unreachable()
        try open()
        guard bootstrap else { return }
        var batch = WriteBatch()
        for shard in 0..<Self.shardCount {
            try ShardActor.bootstrapWrites(shard: shard, node: "n1", store: store, into: &batch)
        }
        try database.write(batch, sync: true)
    }

    func open() throws {
        database = try Database.open(path: directory, columnFamilies: ShardStore.families)
        writer = GroupCommitWriter(database: database)
        store = try ShardStore(database: database)
        let ticker = RaftTicker(shardCount: Self.shardCount)
        links = RaftLinks(transport: outbound, ticker: ticker)
        let live = self.live
        ticking = Task {
            await ticker.run { number in await live[number]?.tick() }
        }
    }

    private var links: RaftLinks!
    private var outbound: any RaftOutbound = NoPeers()

    /// The shard, recovered and leading its group, with every committed entry applied.
    func shard(_ number: Int = 0) async throws -> ShardActor {
        let shard = try ShardActor(
            shard: number, nodeID: "n1", store: store, writer: writer, settings: settings, logger: Logger(label: "test")
        )
        live[number] = shard
        await shard.attach(links, onFailure: { _ in })
        let deadline = ContinuousClock.now + .seconds(60)
        while !(await shard.readyForReads()) {
            guard ContinuousClock.now < deadline else { throw HarnessError("shard \(number) never led its group") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return shard
    }

    /// A shard of this (unbootstrapped) store as node `node`: attached, not waited on.
    func replica(_ number: Int = 0, node: String) async throws -> ShardActor {
        let shard = try ShardActor(
            shard: number, nodeID: node, store: store, writer: writer, settings: settings, logger: Logger(label: "test")
        )
        live[number] = shard
        await shard.attach(links, onFailure: { _ in })
        return shard
    }

    /// Closes everything as a crash would leave it: nothing is flushed beyond what was durable.
    func crashAndReopen() throws {
        ticking?.cancel()
        live.removeAll()
        writer.shutdown()
        database.close()
        try open()
    }

    deinit {
        ticking?.cancel()
        writer.shutdown()
        database.close()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// The shards the harness's ticker drives.
final class LiveShards: Sendable {
    private let shards = Mutex<[Int: ShardActor]>([:])

    subscript(number: Int) -> ShardActor? {
        get { shards.withLock { $0[number] } }
        set { shards.withLock { $0[number] = newValue } }
    }

    func removeAll() { shards.withLock { $0 = [:] } }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The network of a replica whose leader is not there: what it sends is lost.
struct Unreachable: RaftOutbound {
    func send(shard: Int, _ message: RaftMessage, to node: NodeID) {}

    func sendSnapshotChunk(_ chunk: Infranaut_V1_RaftSnapshotChunk, to node: NodeID) async
        -> Infranaut_V1_RaftSnapshotChunkResponse?
    { nil }
}

/// The network of a single-node group: it has no peer, so sending anything is a bug.
struct NoPeers: RaftOutbound {
    func send(shard: Int, _ message: RaftMessage, to node: NodeID) {
        Issue.record("a single-voter group sent \(message) to \(node)")
    }

    func sendSnapshotChunk(_ chunk: Infranaut_V1_RaftSnapshotChunk, to node: NodeID) async
        -> Infranaut_V1_RaftSnapshotChunkResponse?
    {
        Issue.record("a single-voter group sent a snapshot to \(node)")
        return nil
    }
}

func request(model: String = "m", key: String, rows: Int = 4, x: [Double]? = nil, city: [String]? = nil)
    -> Infranaut_V1_IngestRequest
{
    .with {
        $0.idempotencyKey = key
        $0.batch = .with {
            $0.modelID = model
            $0.rowCount = UInt32(rows)
            $0.columns = [
                .with {
                    $0.name = "x"
                    $0.doubles = .with { $0.values = x ?? (0..<rows).map(Double.init) }
                },
                .with {
                    $0.name = "city"
                    $0.strings = .with { $0.values = city ?? (0..<rows).map { "c\($0 % 2)" } }
                },
            ]
        }
    }
}

@Suite("shard actor on RocksDB")
struct ShardActorTests {
    @Test("acknowledged batches are applied and survive a crash (the group's log is replayed)")
    func replayAfterCrash() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var last: UInt64 = 0
        for i in 0..<5 {
            let response = await shard.ingest(request(key: "k\(i)", x: [1, 2, 3, Double(i)]))
            #expect(response.status.code == .ok)
            // The sequence is the op's index in the group's log: increasing, after the entries the
            // group itself wrote (its founding configuration, each leader's first entry).
            #expect(response.sequence > last)
            last = response.sequence
        }
        let before = await shard.status(model: "m")
        #expect(before?.rows == 20)
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        let after = await recovered.status(model: "m")
        #expect(after == before)
        #expect(await recovered.appliedSequence > last)
        // New ops continue the log; old keys are still remembered.
        #expect(await recovered.ingest(request(key: "k5")).sequence > last)
        #expect(await recovered.ingest(request(key: "k4")).replayed)
    }

    @Test("a checkpoint drops the log it covers; a crash then recovers the checkpoint plus the entries after it")
    func checkpointPlusReplay() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        for i in 0..<3 { _ = await shard.ingest(request(key: "a\(i)")) }
        let covered = await shard.appliedSequence
        await shard.checkpoint()
        // Every stored entry left is after the checkpoint.
        let left = try harness.database.entries(prefix: StorageKeys.Shard.prefix(0), in: harness.store.raftLog)
        #expect(try left.allSatisfy { try StorageKeys.RaftLog.parse($0.key).index > covered })
        for i in 0..<2 { _ = await shard.ingest(request(key: "b\(i)", x: [10, 20, 30, 40])) }
        let before = await shard.status(model: "m")
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.status(model: "m") == before)
        #expect(before?.rows == 20)
        let x = before?.features.first { $0.name == "x" }
        #expect(x?.max == 40)
        #expect(x?.count == 20)
        // Keys applied before the checkpoint are remembered from it, keys after it from the log.
        #expect(await recovered.ingest(request(key: "a1")).replayed)
        #expect(await recovered.ingest(request(key: "b1")).replayed)
        #expect(await recovered.status(model: "m")?.rows == 20)
    }

    @Test("a retried idempotency key is applied once, also after a crash")
    func idempotentRetries() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        let first = await shard.ingest(request(key: "same"))
        let again = await shard.ingest(request(key: "same"))
        #expect(first.status.code == .ok && !first.replayed)
        #expect(again.replayed)
        #expect(again.sequence == first.sequence)
        #expect(await shard.status(model: "m")?.rows == 4)
        // Concurrent duplicates of a new key: exactly one applies.
        async let a = shard.ingest(request(key: "race"))
        async let b = shard.ingest(request(key: "race"))
        let (ra, rb) = await (a, b)
        #expect(ra.sequence == rb.sequence)
        #expect(ra.replayed != rb.replayed)
        #expect(await shard.status(model: "m")?.rows == 8)
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.ingest(request(key: "same")).replayed)
        #expect(await recovered.status(model: "m")?.rows == 8)
    }

    @Test(
        "values that do not fit the established type are counted, reported with row and column, and stored as missing")
    func typeMismatches() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        _ = await shard.ingest(request(key: "schema"))  // x: double, city: string
        var mixed = request(key: "mixed", rows: 3)
        mixed.batch.columns[0] = .with {
            $0.name = "x"
            $0.strings = .with { $0.values = ["7.5", "oops", "8"] }
        }
        mixed.batch.columns[1] = .with {
            $0.name = "city"
            $0.doubles = .with { $0.values = [1, .nan, 3] }
        }
        let response = await shard.ingest(mixed)
        #expect(response.status.code == .ok)
        #expect(response.rowsAccepted == 3)
        #expect(response.typeMismatchCount == 3)
        #expect(
            response.typeMismatches.first
                == .with {
                    $0.row = 1
                    $0.column = "x"
                    $0.expected = "double"
                    $0.value = "oops"
                })
        let status = await shard.status(model: "m")
        let x = status?.features.first { $0.name == "x" }
        let city = status?.features.first { $0.name == "city" }
        #expect(x?.typeMismatches == 1)
        #expect(x?.count == 6)  // 4 + "7.5" + "8"
        #expect(x?.max == 8)
        #expect(x?.missing == 1)
        #expect(city?.typeMismatches == 2)
        #expect(city?.missing == 3)  // 2 mismatched + 1 NaN
        try harness.crashAndReopen()
        let reopened = try await harness.shard()
        #expect(await reopened.status(model: "m") == status)
    }

    @Test("after the store fails the shard refuses writes with a retryable error")
    func storageFailureStopsShard() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        #expect(await shard.ingest(request(key: "ok")).status.code == .ok)
        harness.writer.shutdown()
        let failed = await shard.ingest(request(key: "lost"))
        #expect(failed.status.code == .unavailable)
        #expect(failed.status.retryable)
        let next = await shard.ingest(request(key: "next"))
        #expect(next.status.code == .unavailable)
        #expect(await shard.status(model: "m")?.rows == 4)
        harness.writer = GroupCommitWriter(database: harness.database)
    }
}

@Suite("schema establishment")
struct SchemaEstablishmentTests {
    @Test("a first column without any value does not fix the feature's type; its rows count as missing")
    func allMissingFirstColumn() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var empty = request(key: "empty", rows: 3)
        empty.batch.columns[1] = .with {
            $0.name = "city"
            $0.doubles = .with { $0.values = [.nan, .nan, .nan] }
        }
        #expect(await shard.ingest(empty).status.code == .ok)
        let typed = await shard.ingest(request(key: "typed", rows: 2, city: ["paris", "rome"]))
        #expect(typed.typeMismatchCount == 0)
        let city = await shard.status(model: "m")?.features.first { $0.name == "city" }
        #expect(city?.type == .string)
        #expect(city?.count == 2)
        #expect(city?.missing == 3)
        try harness.crashAndReopen()
        let reopened = try await harness.shard()
        #expect(await reopened.status(model: "m")?.features.first { $0.name == "city" } == city)
    }
}
