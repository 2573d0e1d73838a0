import Cluster
import Foundation
import Testing
import Wire

@testable import Actors

/// A model whose checkpoint is larger than a snapshot chunk travels in pieces of its stored bytes
/// and arrives whole; a snapshot whose pieces do not fit together is refused.
@Suite("snapshot chunks with models larger than a chunk")
struct SnapshotPiecesTests {
    /// 20 numeric features of 4,000 rows: a snapshot record of a few hundred KB.
    static func wide(key: String, seed: Int) -> Infranaut_V1_IngestRequest {
        let rows = 4_000
        return .with {
            $0.idempotencyKey = key
            $0.batch = .with {
                $0.modelID = "wide"
                $0.rowCount = UInt32(rows)
                $0.columns = (0..<20).map { f in
                    .with {
                        $0.name = "f\(f)"
                        $0.doubles = .with {
                            $0.values = (0..<rows).map { r in Double((r * 7_919 + f * 104_729 + seed) % 10_007) / 7 }
                        }
                    }
                }
            }
        }
    }

    /// A leader's checkpoint with one large and one small model, cut into 64 KiB chunks.
    static func leaderChunks() async throws -> (
        chunks: [Infranaut_V1_RaftSnapshotChunk], wide: Infranaut_V1_ModelStatus?, small: Infranaut_V1_ModelStatus?,
        leader: Harness
    ) {
        let leader = try Harness()
        leader.settings.snapshotChunkBytes = 64 << 10
        let shard = try await leader.shard()
        for i in 0..<3 { #expect(await shard.ingest(Self.wide(key: "w\(i)", seed: i)).status.code == .ok) }
        #expect(await shard.ingest(request(model: "small", key: "s")).status.code == .ok)
        await shard.checkpoint()
        let term = try #require(await shard.raft?.term)
        let chunks = try await shard.checkpointChunks(term: term)
        return (chunks, await shard.status(model: "wide"), await shard.status(model: "small"), leader)
    }

    @Test("a model larger than a chunk is sent in pieces over several chunks and installed whole")
    func largeModelArrivesWhole() async throws {
        let (chunks, wide, small, leader) = try await Self.leaderChunks()
        _ = leader
        let carrying = chunks.filter { !$0.modelPieces.isEmpty }
        #expect(carrying.count >= 2, "the wide model spans chunks")
        #expect(chunks.allSatisfy { $0.modelPieces.reduce(0) { $0 + $1.data.count } <= 64 << 10 })
        #expect(chunks.flatMap(\.models).map(\.modelID) == ["small"])

        let follower = try Harness(bootstrap: false)
        let replica = try await follower.replica(node: "n2")
        var last = Infranaut_V1_RaftSnapshotChunkResponse()
        for chunk in chunks { last = await replica.receiveSnapshotChunk(chunk, from: "n1") }
        #expect(last.installed)
        let deadline = ContinuousClock.now + .seconds(30)
        while await replica.status(model: "wide") != wide {
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(wide?.rows == 12_000)
        #expect(await replica.status(model: "wide") == wide)
        #expect(await replica.status(model: "small") == small)
    }

    @Test("a snapshot that ends inside a model's pieces, or mixes two models' pieces, is refused")
    func brokenPiecesAreRefused() async throws {
        let (chunks, _, _, leader) = try await Self.leaderChunks()
        _ = leader
        var unfinished = chunks
        for c in unfinished.indices {
            for p in unfinished[c].modelPieces.indices { unfinished[c].modelPieces[p].last = false }
        }
        var mixed = chunks
        let first = try #require(mixed.firstIndex { !$0.modelPieces.isEmpty })
        mixed[first].modelPieces[0].modelID = "other"

        for broken in [unfinished, mixed] {
            let follower = try Harness(bootstrap: false)
            let replica = try await follower.replica(node: "n2")
            var installed = false
            for chunk in broken {
                installed = await replica.receiveSnapshotChunk(chunk, from: "n1").installed || installed
            }
            #expect(!installed)
            #expect(await replica.status(model: "wide") == nil)
            #expect(await replica.status(model: "small") == nil)
        }
    }
}
