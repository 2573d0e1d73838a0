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

        // A piece split into a 1-byte piece and the rest: pieces but the last carry 16 KiB or more.
        var tiny = chunks
        let c = try #require(tiny.firstIndex { $0.modelPieces.contains { !$0.last } })
        let p = try #require(tiny[c].modelPieces.firstIndex { !$0.last })
        var head = tiny[c].modelPieces[p], rest = tiny[c].modelPieces[p]
        head.data = rest.data.prefix(1)
        rest.data = rest.data.dropFirst()
        tiny[c].modelPieces.replaceSubrange(p...p, with: [head, rest])

        for broken in [unfinished, mixed, tiny] {
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

    @Test("a model that is small on the wire but large decoded counts against the receiver's limit")
    func decodedSizeIsCounted() async throws {
        let (chunks, _, _, leader) = try await Self.leaderChunks()
        _ = leader
        // 200,000 empty features: ~400 KB of bytes, far more once decoded.
        let bloated = Infranaut_V1_ModelSnapshot.with {
            $0.modelID = "bloated"
            $0.features = Array(repeating: Infranaut_V1_FeatureSnapshot(), count: 200_000)
        }
        let bytes = try bloated.serializedBytes() as [UInt8]
        #expect(bytes.count < 1 << 20)
        var chunk = chunks[0]
        chunk.models = []
        chunk.idempotency = []
        chunk.windows = []
        chunk.last = true
        chunk.modelPieces = stride(from: 0, to: bytes.count, by: 64 << 10).map { start in
            let end = min(start + (64 << 10), bytes.count)
            return .with {
                $0.modelID = "bloated"
                $0.data = Data(bytes[start..<end])
                $0.last = end == bytes.count
            }
        }
        let follower = try Harness(bootstrap: false)
        follower.settings.maxIncomingSnapshotBytes = 4 << 20
        let replica = try await follower.replica(node: "n2")
        #expect(!(await replica.receiveSnapshotChunk(chunk, from: "n1").installed))
        #expect(await replica.status(model: "bloated") == nil)
    }
}
