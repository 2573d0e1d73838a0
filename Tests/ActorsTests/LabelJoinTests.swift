import Foundation
import Storage
import Testing
import Wire

@testable import Actors

private let later = ContinuousClock.now + .seconds(3_600)

/// A binary classifier with a score, one feature and a city segment, in windows of a minute.
private func classifier(_ name: String, retention: UInt64 = 0) -> Infranaut_V1_ApplyModelRequest {
    .with {
        $0.spec = cityAndX(name, windowMs: 60_000)
        $0.spec.task = .binaryClassification
        $0.spec.columns = .with { $0.prediction = "score" }
        if retention > 0 { $0.spec.retention = .with { $0.predictionsMs = retention } }
    }
}

/// Predictions: one row per id, at `start` (event time), in cities c0, c1, c0, …
private func predictions(_ model: String, key: String, ids: [String], scores: [Double], at start: Int64)
    -> Infranaut_V1_IngestRequest
{
    var built = request(model: model, key: key, rows: ids.count)
    built.batch.predictionIds = ids
    built.batch.eventTimeUnixMs = ids.indices.map { start + Int64($0) }
    built.batch.predictionColumn = "score"
    built.batch.columns.append(
        .with {
            $0.name = "score"
            $0.doubles = .with { $0.values = scores }
        })
    return built
}

/// Labels for `ids` (nil: a row without a label value).
func labels(_ model: String, key: String, ids: [String], values: [Bool?]) -> Infranaut_V1_IngestRequest {
    .with {
        $0.idempotencyKey = key
        $0.batch = .with {
            $0.modelID = model
            $0.rowCount = UInt32(ids.count)
            $0.predictionIds = ids
            $0.labels = true
            $0.labelColumn = "y"
            $0.columns = [
                .with {
                    $0.name = "y"
                    $0.bools = .with {
                        $0.values = values.map { $0 ?? false }
                        $0.missingRows = values.indices.filter { values[$0] == nil }.map(UInt32.init)
                    }
                }
            ]
        }
    }
}

private func outcome(
    joined: UInt64 = 0, unusable: UInt64 = 0, unknown: UInt64 = 0, already: UInt64 = 0, missing: UInt64 = 0
)
    -> Infranaut_V1_LabelOutcome
{
    .with {
        $0.joined = joined
        $0.unusable = unusable
        $0.unknownIds = unknown
        $0.alreadyLabelled = already
        $0.missing = missing
    }
}

private func performance(_ window: Infranaut_V1_WindowInfo) -> (labelled: UInt64, accuracy: Double?) {
    (window.performance.labelledRows, window.performance.realized["accuracy"])
}

@Suite("labels joined to kept predictions in the shard")
struct LabelJoinTests {
    @Test(
        "labels join their predictions once, in open and closed windows and their segments, through retries, checkpoints and crashes"
    )
    func labelsJoinOnce() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        guard case .done(let created) = await shard.applySpecAtLeader(classifier("p"), deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(created.outcome == .created)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now / 60_000 - 10) * 60_000
        // Minute 0: four predictions (cities c0, c1, c0, c1); minute 1's rows close it.
        let first = predictions("p", key: "w0", ids: ["a0", "a1", "a2", "a3"], scores: [0.9, 0.2, 0.8, 0.4], at: base)
        #expect(await shard.ingest(first).status.code == .ok)
        let second = predictions("p", key: "w1", ids: ["b0", "b1"], scores: [0.7, 0.1], at: base + 60_000)
        #expect(await shard.ingest(second).status.code == .ok)
        await shard.checkpoint()

        // a0 and a1 join the closed minute 0 (stored by the checkpoint), b0 the open minute 1; a0
        // twice in one batch counts once; zz was never predicted; a2's row carries no label.
        let batch = labels(
            "p", key: "l1", ids: ["a0", "a1", "a0", "zz", "b0", "a2"], values: [true, false, true, true, false, nil])
        let answer = await shard.ingest(batch)
        #expect(answer.status.code == .ok, "\(answer.status)")
        #expect(answer.labels == outcome(joined: 3, unknown: 1, already: 1, missing: 1))
        // A retry answers the same outcome and applies nothing again.
        let retried = await shard.ingest(batch)
        #expect(retried.replayed && retried.labels == answer.labels)

        let asked = Infranaut_V1_WindowsRequest.with {
            $0.modelID = "p"
            $0.wholeModelOnly = true
            $0.includeOpen = true
        }
        let read = await shard.windows(asked)
        #expect(read.windows.map(performance).map(\.labelled) == [2, 1])
        // a0 (0.9, positive) and a1 (0.2, negative) are both right; b0 (0.7, negative) is wrong.
        #expect(read.windows.map(performance).map(\.accuracy) == [1.0, 0.0])
        let c0 = await shard.windows(
            .with {
                $0.modelID = "p"
                $0.segmentColumn = "city"
                $0.segmentValue = "c0"
                $0.includeOpen = true
            })
        #expect(c0.windows.map(performance).map(\.labelled) == [1, 1], "a0 in minute 0, b0 in minute 1")

        // A crash before the next checkpoint: the log replays the labels against the stored
        // predictions and windows; a0 is labelled once, not twice.
        try harness.crashAndReopen()
        var recovered = try await harness.shard()
        #expect(await recovered.windows(asked) == read)
        let again = await recovered.ingest(labels("p", key: "l2", ids: ["a0", "a3"], values: [true, false]))
        #expect(again.labels == outcome(joined: 1, already: 1))
        await recovered.checkpoint()
        let checkpointed = await recovered.windows(asked)
        #expect(checkpointed.windows.map(performance).map(\.labelled) == [3, 1])
        #expect(checkpointed.windows.first?.performance.realized["accuracy"] == 1.0)
        try harness.crashAndReopen()
        recovered = try await harness.shard()
        #expect(await recovered.windows(asked) == checkpointed)
        let last = await recovered.ingest(
            labels("p", key: "l3", ids: ["a3", "b1", "a2"], values: [true, false, true]))
        #expect(last.labels == outcome(joined: 2, already: 1))
    }

    @Test("labels that join the newest closed window later fire its realized-performance rule, across a crash")
    func lateLabelsJudgeAgain() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        var spec = classifier("r")
        spec.spec.alerts = [
            .with {
                $0.name = "acc-low"
                $0.metric = "realized_accuracy"
                $0.condition = .below(0.6)
            }
        ]
        guard case .done = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now / 60_000 - 10) * 60_000
        let ids = ["a0", "a1", "a2", "a3"]
        #expect(
            await shard.ingest(predictions("r", key: "w0", ids: ids, scores: [0.9, 0.8, 0.7, 0.6], at: base)).status
                .code == .ok)
        #expect(
            await shard.ingest(predictions("r", key: "w1", ids: ["b0"], scores: [0.9], at: base + 60_000)).status.code
                == .ok)
        func accLow(_ shard: ShardActor) async -> Infranaut_V1_AlertInfo? {
            await shard.alerts(of: .with { $0.modelID = "r" }).alerts.first { $0.rule == "acc-low" }
        }
        #expect(await accLow(shard) == nil, "closed without labels: nothing to read")
        await shard.checkpoint()
        // Every prediction said positive; every label says negative.
        let joined = await shard.ingest(labels("r", key: "l1", ids: ids, values: [false, false, false, false]))
        #expect(joined.labels.joined == 4)
        let fired = await accLow(shard)
        #expect(
            fired?.state == .firing && fired?.value == 0 && fired?.windowStartUnixMs == base,
            "\(String(describing: fired))")
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        let replayed = await accLow(recovered)
        #expect(replayed?.state == .firing && replayed?.sequence == fired?.sequence)
    }

    @Test("labels for a model the shard does not hold, or one without a task, are unknown and create nothing")
    func labelsWithoutPredictions() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        let unknown = await shard.ingest(labels("nobody", key: "l1", ids: ["a", "b"], values: [true, nil]))
        #expect(unknown.status.code == .ok)
        #expect(unknown.labels == outcome(unknown: 1, missing: 1))
        #expect(await shard.model("nobody") == nil)
        // Telemetry with ids but no spec (no task): nothing is kept for labels.
        var plain = request(model: "plain", key: "t1", rows: 2)
        plain.batch.predictionIds = ["a", "b"]
        #expect(await shard.ingest(plain).status.code == .ok)
        let none = await shard.ingest(labels("plain", key: "l2", ids: ["a", "b"], values: [true, false]))
        #expect(none.labels == outcome(unknown: 2))
    }

    @Test(
        "a snapshot streams the kept predictions chunk by chunk; the follower stages them in its other generation and switches at the install"
    )
    func snapshotCarriesPredictions() async throws {
        let leader = try Harness()
        leader.settings.logRetainedEntries = 0
        leader.settings.snapshotChunkBytes = 64 << 10
        let shard = try await leader.shard()
        guard case .done = await shard.applySpecAtLeader(classifier("s"), deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now / 60_000 - 10) * 60_000
        // 3,000 predictions: several 64 KiB chunks of records.
        let ids = (0..<3_000).map { "id-\($0)" }
        let sent = predictions("s", key: "w0", ids: ids, scores: ids.indices.map { Double($0) / 3_000 }, at: base)
        #expect(await shard.ingest(sent).status.code == .ok)
        await shard.checkpoint()
        let term = try #require(await shard.raft?.term)
        let first = try await shard.checkpointChunks(term: term)
        let carrying = first.filter { !$0.predictions.isEmpty }
        #expect(carrying.count >= 2 && first.flatMap(\.predictions).count == 3_000)
        #expect(first.last?.last == true && first.dropLast().allSatisfy { !$0.last })
        #expect(first.enumerated().allSatisfy { $0.element.chunk == UInt32($0.offset) })

        func stored(_ harness: Harness) throws -> (generation: UInt8, keys: [[UInt8]]) {
            let store = try #require(harness.store)
            let generation =
                try store.database.get(StorageKeys.Predictions.Generation.key(shard: 0), in: store.meta)?.first ?? 0
            let keys = try store.database.entries(prefix: StorageKeys.Shard.prefix(0), in: store.predictions).map(\.key)
            return (generation, keys)
        }
        let follower = try Harness(bootstrap: false)
        let replica = try await follower.replica(node: "n2")
        // An interrupted stream first: half of it staged, never installed.
        for chunk in first.prefix(first.count / 2) { _ = await replica.receiveSnapshotChunk(chunk, from: "n1") }
        #expect(try stored(follower).keys.allSatisfy { $0[2] == 1 }, "staged in generation 1")
        // More predictions, a new checkpoint: a new stream replaces the interrupted one.
        let more = predictions("s", key: "w1", ids: ["late-0", "late-1"], scores: [0.5, 0.6], at: base + 1)
        #expect(await shard.ingest(more).status.code == .ok)
        await shard.checkpoint()
        let second = try await shard.checkpointChunks(term: term)
        var last = Infranaut_V1_RaftSnapshotChunkResponse()
        for chunk in second { last = await replica.receiveSnapshotChunk(chunk, from: "n1") }
        #expect(last.installed)
        let deadline = ContinuousClock.now + .seconds(30)
        while try stored(follower).generation != 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let installed = try stored(follower)
        #expect(installed.generation == 1 && installed.keys.count == 3_002)
        #expect(installed.keys.allSatisfy { $0[2] == 1 })
        // The leader's own records are under its generation 0; the follower's are the same records.
        let leaderKeys = try stored(leader).keys
        #expect(leaderKeys.map { Array($0.dropFirst(3)) } == installed.keys.map { Array($0.dropFirst(3)) })
    }

    @Test("predictions expire by the ops' own acceptance times: kept for the retention, then unknown")
    func predictionsExpire() throws {
        let harness = try Harness()
        var models = ShardModels([:], dirty: false, loader: ModelLoader(store: harness.store, shard: 0))
        let hour: Int64 = 3_600_000
        let t = 1_700_000_000_000 - 1_700_000_000_000 % hour  // the start of an epoch
        _ = try models.apply(
            spec: .with {
                $0.modelID = "e"
                $0.spec = classifier("e", retention: UInt64(hour)).spec
            }, acceptedUnixMs: t)
        func kept(_ key: String, _ ids: [String], at ms: Int64) throws {
            var op = Infranaut_V1_StoredOp()
            op.idempotencyKey = key
            op.batch = predictions("e", key: key, ids: ids, scores: ids.map { _ in 0.9 }, at: ms).batch
            op.acceptedUnixMs = ms
            _ = try models.apply(op)
        }
        func labelled(_ key: String, _ ids: [String], at ms: Int64) throws -> Infranaut_V1_LabelOutcome {
            var op = Infranaut_V1_StoredOp()
            op.idempotencyKey = key
            op.batch = labels("e", key: key, ids: ids, values: ids.map { _ in true }).batch
            op.acceptedUnixMs = ms
            return try models.applyLabels(op)
        }
        try kept("p1", ["a", "b"], at: t + 1)
        // Epochs of an hour (the retention of an hour, halved, is below the 1 h floor): an op two
        // hours on still sees the first epoch; three hours on, it is gone for every replica.
        #expect(try labelled("l1", ["a"], at: t + 2 * hour) == outcome(joined: 1))
        #expect(try labelled("l2", ["b"], at: t + 3 * hour) == outcome(unknown: 1))
        #expect(models.predictionsLiveFrom("e") == UInt32((t + 3 * hour) / hour) - 2)
        // A new epoch length (another retention) voids what was kept.
        try kept("p2", ["c"], at: t + 3 * hour + 1)
        _ = try models.apply(
            spec: .with {
                $0.modelID = "e"
                $0.spec = classifier("e", retention: UInt64(10 * hour)).spec
            }, acceptedUnixMs: t + 3 * hour + 2)
        #expect(try labelled("l3", ["c"], at: t + 3 * hour + 3) == outcome(unknown: 1))
        #expect(models.takePredictions().isCleared("e"))
    }

    @Test("a prediction whose row carried its label is kept as labelled: a later label for it is not counted again")
    func inlineThenDelayed() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var spec = classifier("i")
        spec.spec.columns.label = "y"
        guard case .done = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var sent = predictions("i", key: "w0", ids: ["a0", "a1"], scores: [0.9, 0.1], at: now - 5_000)
        sent.batch.columns.append(
            .with {
                $0.name = "y"
                $0.bools = .with {
                    $0.values = [true, false]
                    $0.missingRows = [1]  // a1 has no label yet
                }
            })
        #expect(await shard.ingest(sent).status.code == .ok)
        let answer = await shard.ingest(labels("i", key: "l1", ids: ["a0", "a1"], values: [true, false]))
        #expect(answer.labels == outcome(joined: 1, already: 1))
        let read = await shard.windows(
            .with {
                $0.modelID = "i"
                $0.wholeModelOnly = true
                $0.includeOpen = true
            })
        #expect(read.windows.map(performance).map(\.labelled) == [2])
    }

    @Test("a prediction's epoch follows the model's newest op, never a leader's clock that runs behind")
    func epochsNeverGoBack() throws {
        let harness = try Harness()
        var models = ShardModels([:], dirty: false, loader: ModelLoader(store: harness.store, shard: 0))
        let hour: Int64 = 3_600_000
        let t = 1_700_000_000_000 - 1_700_000_000_000 % hour
        _ = try models.apply(
            spec: .with {
                $0.modelID = "c"
                $0.spec = classifier("c", retention: UInt64(hour)).spec
            }, acceptedUnixMs: t)
        func kept(_ key: String, _ score: Double, accepted ms: Int64) throws {
            var op = Infranaut_V1_StoredOp()
            op.idempotencyKey = key
            // Both rows in the same (open) window, by event time.
            op.batch = predictions("c", key: key, ids: ["x"], scores: [score], at: t + 2 * hour).batch
            op.acceptedUnixMs = ms
            _ = try models.apply(op)
        }
        try kept("p1", 0.9, accepted: t + 2 * hour)
        // The next leader's clock is half an hour behind (the previous epoch, by that clock): the
        // same id lands in the same epoch, not an older one, so every replica's newest-first probe
        // finds the newest prediction.
        try kept("p2", 0.1, accepted: t + 2 * hour - hour / 2)
        let taken = models.takePredictions()
        #expect(taken.record("c", "x")?.epoch == UInt32((t + 2 * hour) / hour))
        #expect(taken.record("c", "x")?.record.number == 0.1)
    }
}
