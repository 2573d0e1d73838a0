import Actors
import Foundation
import Testing
import Wire

/// A batch of one row with a double column per name.
private func wide(model: String = "m", key: String, names: some Sequence<String>) -> Infranaut_V1_IngestRequest {
    .with {
        $0.idempotencyKey = key
        $0.batch = .with {
            $0.modelID = model
            $0.rowCount = 1
            $0.columns = names.map { name in
                .with {
                    $0.name = name
                    $0.doubles = .with { $0.values = [1] }
                }
            }
        }
    }
}

private func names(_ prefix: String, _ range: Range<Int>) -> [String] { range.map { "\(prefix)\($0)" } }

@Suite("feature and model limits, status paging")
struct ShardLimitTests {
    @Test("a batch that would pass the feature limit is refused whole, naming the limit, and changes nothing")
    func featureLimitRefusesWholeBatch() async throws {
        let harness = try Harness()
        harness.settings.maxFeaturesPerModel = 10
        let shard = try await harness.shard()
        #expect(await shard.ingest(wide(key: "a", names: names("f", 0..<8))).status.code == .ok)
        let before = await shard.status(model: "m")
        let appliedBefore = await shard.appliedSequence

        // 8 held + 3 new = 11 > 10: refused, although two of the three would fit.
        let refused = await shard.ingest(wide(key: "b", names: names("f", 5..<11)))
        #expect(refused.status.code == .invalidArgument)
        #expect(!refused.status.retryable)
        let message = refused.status.message
        #expect(message.contains("10 features per model"))
        #expect(message.contains("which has 8"))
        #expect(message.contains("--max-features-per-model"))
        #expect(await shard.status(model: "m") == before)
        // Nothing reached the group's log either.
        #expect(await shard.appliedSequence == appliedBefore)

        // Known columns still pass, and new ones up to the limit exactly.
        #expect(await shard.ingest(wide(key: "c", names: names("f", 0..<8))).status.code == .ok)
        #expect(await shard.ingest(wide(key: "d", names: names("f", 0..<10))).status.code == .ok)
        #expect(await shard.ingest(wide(key: "e", names: ["f11"])).status.code == .invalidArgument)
        let after = try #require(await shard.status(model: "m"))
        #expect(after.features.count == 10)
        #expect(after.batches == 3)
        // The refused key was not remembered: the same key with known columns is applied.
        #expect(await shard.ingest(wide(key: "b", names: ["f0"])).status.code == .ok)
    }

    @Test("columns without any value count against the feature limit (they are held per name too)")
    func untypedNamesCount() async throws {
        let harness = try Harness()
        harness.settings.maxFeaturesPerModel = 3
        let shard = try await harness.shard()
        var batch = wide(key: "a", names: ["x"])
        batch.batch.columns.append(
            contentsOf: ["u", "v"].map { name in
                .with {
                    $0.name = name
                    $0.doubles = .with { $0.values = [.nan] }
                }
            })
        #expect(await shard.ingest(batch).status.code == .ok)
        #expect(await shard.ingest(wide(key: "b", names: ["w"])).status.code == .invalidArgument)
        // A typed column for an untyped name is no new name.
        #expect(await shard.ingest(wide(key: "c", names: ["u", "v", "x"])).status.code == .ok)
    }

    @Test("concurrent batches racing at the feature limit never pass it together")
    func concurrentBatchesAtTheLimit() async throws {
        let harness = try Harness()
        harness.settings.maxFeaturesPerModel = 100
        let shard = try await harness.shard()
        // The first batch alone: it claims the shard's term (concurrent first batches would be told
        // to retry while it does).
        #expect(await shard.ingest(wide(key: "first", names: names("a", 0..<10))).status.code == .ok)
        // 40 batches of 10 distinct new names each: exactly 9 fit.
        let codes = await withTaskGroup(of: Infranaut_V1_StatusCode.self) { group in
            for batch in 0..<40 {
                group.addTask {
                    await shard.ingest(wide(key: "k\(batch)", names: names("b\(batch)-", 0..<10))).status.code
                }
            }
            return await group.reduce(into: [Infranaut_V1_StatusCode]()) { $0.append($1) }
        }
        #expect(codes.filter { $0 == .ok }.count == 9, "\(codes)")
        #expect(codes.filter { $0 == .invalidArgument }.count == 31)
        #expect(await shard.status(model: "m")?.features.count == 100)
        // The limit holds after recovery too (recovered state counts like applied state).
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.status(model: "m")?.features.count == 100)
        #expect(await recovered.ingest(wide(key: "late", names: ["new"])).status.code == .invalidArgument)
    }

    @Test("the node's model limit counts models across its shards, and concurrent first batches cannot pass it")
    func modelLimitAcrossShards() async throws {
        let harness = try Harness()
        harness.settings.maxModels = 9
        var shards: [ShardActor] = []
        for number in 0..<4 { shards.append(try await harness.shard(number)) }
        // One model per shard first, alone (each shard claims its term on its first batch).
        for (index, shard) in shards.enumerated() {
            #expect(await shard.ingest(wide(model: "first\(index)", key: "k", names: ["x"])).status.code == .ok)
        }
        let codes = await withTaskGroup(of: Infranaut_V1_StatusCode.self) { group in
            for model in 0..<12 {
                let shard = shards[model % shards.count]
                group.addTask { await shard.ingest(wide(model: "model\(model)", key: "k", names: ["x"])).status.code }
            }
            return await group.reduce(into: [Infranaut_V1_StatusCode]()) { $0.append($1) }
        }
        #expect(codes.filter { $0 == .ok }.count == 5, "\(codes)")
        #expect(codes.filter { $0 == .invalidArgument }.count == 7)
        #expect(harness.store.modelCount.value == 9)
        var held = 0
        for shard in shards { held += await shard.modelIDs.count }
        #expect(held == 9)

        let refused = await shards[0].ingest(wide(model: "another", key: "k", names: ["x"]))
        #expect(refused.status.code == .invalidArgument)
        #expect(refused.status.message.contains("holds 9"))
        #expect(refused.status.message.contains("9 models per node (--max-models)"))
        // Models already held keep taking batches.
        for shard in shards {
            for model in await shard.modelIDs {
                #expect(await shard.ingest(wide(model: model, key: "more", names: ["x"])).status.code == .ok)
            }
        }
    }

    @Test("status pages return every feature exactly once, sorted by name, at most the cap per page")
    func statusPaging() async throws {
        let harness = try Harness()
        harness.settings.maxFeaturesPerModel = 5_000
        let shard = try await harness.shard()
        let all = Set(names("f", 0..<2_500))
        for (index, chunk) in stride(from: 0, to: 2_500, by: 500).enumerated() {
            let response = await shard.ingest(wide(key: "k\(index)", names: names("f", chunk..<chunk + 500).shuffled()))
            #expect(response.status.code == .ok)
        }
        for pageSize: UInt32 in [0, 7, 1_000, 5_000] {
            var seen: [String] = []
            var cursor = ""
            var pages = 0
            repeat {
                let page = try #require(
                    await shard.status(
                        .with {
                            $0.modelID = "m"
                            $0.maxFeatures = pageSize
                            $0.featuresAfter = cursor
                        }))
                pages += 1
                #expect(page.status.code == .ok)
                #expect(page.featuresTotal == 2_500)
                #expect(page.model.rows == 5)
                #expect(page.model.features.count <= StatusPaging.maxFeatures)
                seen += page.model.features.map(\.name)
                cursor = page.nextFeaturesAfter
            } while !cursor.isEmpty && pages < 1_000
            #expect(seen.count == all.count, "page size \(pageSize)")
            #expect(Set(seen) == all)
            #expect(seen == seen.sorted())
            let expectedPages = pageSize == 7 ? (2_500 + 6) / 7 : 3
            #expect(pages == expectedPages, "page size \(pageSize)")
        }
        // A cursor that is not a feature name continues after where it would sort.
        let page = try #require(
            await shard.status(
                .with {
                    $0.modelID = "m"
                    $0.featuresAfter = "f2498a"
                    $0.maxFeatures = 10
                }))
        #expect(page.model.features.prefix(3).map(\.name) == ["f2499", "f25", "f250"])
        #expect(page.nextFeaturesAfter == page.model.features.last?.name)
    }
}
