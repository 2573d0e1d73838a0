import Foundation
import Storage
import Testing
import Wire

@testable import Actors

private let later = ContinuousClock.now + .seconds(3_600)

/// A spec of the test batches' two columns (`x` numeric, `city` categorical), segmented by city,
/// with windows of `windowMs` when given.
func cityAndX(_ name: String, windowMs: UInt64? = nil) -> Infranaut_V1_ModelSpec {
    .with {
        $0.name = name
        $0.features = [
            .with {
                $0.name = "x"
                $0.type = .numeric
            },
            .with {
                $0.name = "city"
                $0.type = .categorical
            },
        ]
        $0.segments = ["city"]
        if let windowMs { $0.window = .with { $0.sizeMs = windowMs } }
    }
}

/// Ops as a shard's log carries them, with fixed acceptance times, so two state machines fed the
/// same list must end equal.
private struct OpScript {
    var ops: [Infranaut_V1_StoredOp] = []
    var clock: Int64 = 1_700_000_000_000
    private var schemas: [String: ProjectedSchema] = [:]

    mutating func batch(_ request: Infranaut_V1_IngestRequest, reference: Bool = false) {
        var projection = schemas[request.batch.modelID] ?? ProjectedSchema(nil)
        var batch = request.batch
        batch.reference = reference
        let normalized = projection.normalize(batch)
        schemas[batch.modelID] = projection
        clock += 1_000
        ops.append(
            .with {
                $0.idempotencyKey = request.idempotencyKey
                $0.batch = normalized.batch
                $0.typeMismatches = normalized.mismatchCounts
                $0.typeMismatchRows = normalized.mismatchRows
                $0.acceptedUnixMs = clock
            })
    }

    mutating func spec(_ spec: Infranaut_V1_ModelSpec) {
        change(
            .with {
                $0.modelID = spec.name
                $0.spec = spec
            })
    }

    mutating func delete(_ model: String) {
        change(
            .with {
                $0.modelID = model
                $0.delete = true
                $0.purgeAfterMs = 1_500
            })
    }

    private mutating func change(_ change: Infranaut_V1_ModelSpecOp) {
        clock += 1_000
        let at = clock
        ops.append(
            .with {
                $0.modelSpec = change
                $0.acceptedUnixMs = at
            })
    }

    mutating func tick(after ms: Int64) {
        clock += ms
        ops.append(
            .with {
                $0.windowTick = true
                $0.acceptedUnixMs = clock
            })
    }
}

/// The shard actor's apply step, without the actor.
private func apply(_ op: Infranaut_V1_StoredOp, to models: inout ShardModels) throws {
    _ = models.purge(deletedBefore: op.acceptedUnixMs)
    if op.windowTick {
        try models.tickWindows(at: op.acceptedUnixMs)
    } else if op.hasModelSpec {
        _ = try models.apply(spec: op.modelSpec, acceptedUnixMs: op.acceptedUnixMs)
    } else {
        _ = try models.apply(op)
    }
}

private func timed(_ model: String, _ key: String, at start: Int64, rows: Int = 4, shift: Double = 0)
    -> Infranaut_V1_IngestRequest
{
    var timed = request(model: model, key: key, rows: rows, x: (0..<rows).map { Double($0) + shift })
    timed.batch.eventTimeUnixMs = (0..<rows).map { start + Int64($0) }
    return timed
}

@Suite("parked models")
struct ParkingTests {
    @Test("a shard that parks its idle models after every checkpoint ends equal to one that never parks")
    func parkingIsInvisible() throws {
        let harness = try Harness()
        let loader = ModelLoader(store: harness.store, shard: 0)
        var parking = ShardModels([:], dirty: false, loader: loader)
        var keeping = ShardModels([:], dirty: false, loader: loader)

        // Two windowed models and a plain one: specs, references, traffic over six minutes (so
        // windows close by watermark), a late batch, an idle close by tick, and a deleted model
        // purged while parked.
        var script = OpScript()
        let minute: Int64 = 60_000
        let base = (script.clock / minute - 30) * minute
        script.spec(cityAndX("w", windowMs: UInt64(minute)))
        script.spec(cityAndX("v", windowMs: UInt64(minute)))
        script.batch(request(model: "w", key: "ref", rows: 50), reference: true)
        for step in 0..<6 {
            script.batch(timed("w", "w\(step)", at: base + Int64(step) * minute, shift: step == 3 ? 40 : 0))
            script.batch(request(model: "p", key: "p\(step)", rows: 3 + step))
            if step % 2 == 0 { script.batch(timed("v", "v\(step)", at: base + Int64(step) * minute)) }
        }
        script.batch(timed("w", "late", at: base + 1, rows: 2))
        script.delete("p")
        script.tick(after: 2 * minute)
        script.batch(timed("w", "after", at: base + 9 * minute))

        var parked = 0
        var store = WriteBatch()
        for (index, op) in script.ops.enumerated() {
            if op.windowTick {
                // The deleted model is parked when the op that purges it arrives.
                #expect(parking.residentState("p") == nil && parking.counts(of: "p") != nil)
            }
            try apply(op, to: &parking)
            try apply(op, to: &keeping)
            for model in keeping.modelIDs {
                #expect(parking.counts(of: model)?.rows == keeping.counts(of: model)?.rows, "model \(model)")
            }
            // Some ops find their model resident, most find it parked. Between checkpoints a
            // changed model is never parked (its checkpoint entry is behind it).
            guard index % 3 != 1 || op.hasModelSpec else {
                parked += parking.park(unusedSince: .now)
                #expect(parking.residentState(op.batch.modelID) != nil)
                continue
            }
            // A checkpoint of the parking side: its changed models written, then the idle ones
            // parked. Both sides hand over the window results they closed, which must agree.
            let closed = parking.takeWindowResults().mapValues { $0.results.mapValues(\.bytes) }
            #expect(closed == keeping.takeWindowResults().mapValues { $0.results.mapValues(\.bytes) })
            for model in parking.takeDirty() {
                let key = StorageKeys.Models.key(shard: 0, model: model)
                if let held = parking.residentState(model) {
                    store.put(key, try held.snapshot.serializedBytes(), in: harness.store.models)
                } else {
                    store.delete(key, in: harness.store.models)
                }
            }
            try harness.database.write(store, sync: false)
            store = WriteBatch()
            _ = keeping.takeDirty()
            parked += parking.park(unusedSince: .now)
            #expect(parking.residentCount == 0)
        }
        #expect(parked >= 8, "models were parked \(parked) times")
        #expect(Set(parking.modelIDs) == ["w", "v"] && Set(keeping.modelIDs) == ["w", "v"])
        #expect(parking.summaries.sorted { $0.name < $1.name } == keeping.summaries.sorted { $0.name < $1.name })
        for model in ["w", "v"] {
            let held = try #require(try parking.state(model))
            #expect(held.snapshot == keeping.residentState(model)?.snapshot, "model \(model)")
        }
        // The deleted model went while parked, without being loaded.
        #expect(try parking.state("p") == nil)
    }

    @Test("idle models leave memory and come back on a batch, a read, a window deadline and a restart")
    func idleModelsComeBack() async throws {
        let harness = try Harness()
        harness.settings.parkIdleModelsAfter = .zero
        harness.settings.deletedModelRetention = .zero
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        guard
            case .done = await shard.applySpecAtLeader(
                .with { $0.spec = cityAndX("w", windowMs: 1_000) }, deadline: later)
        else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(await shard.ingest(request(model: "p", key: "p1")).status.code == .ok)
        #expect(await shard.ingest(timed("w", "w1", at: now - 60_000)).status.code == .ok)
        await shard.checkpoint()
        await shard.parkIdleModels()
        #expect(await shard.residency == (0, 2))

        // A batch of a parked model loads it and adds to what it held.
        #expect(await shard.ingest(request(model: "p", key: "p2")).status.code == .ok)
        #expect(await shard.residency == (1, 1))
        #expect(await shard.status(model: "p")?.rows == 8)

        // The parked model's open window closes by processing time: the tick loads it.
        let deadline = ContinuousClock.now + .seconds(30)
        while await shard.residency.resident < 2 {
            try #require(ContinuousClock.now < deadline, "the parked model's window never closed")
            await shard.closeIdleWindows()
            try await Task.sleep(for: .milliseconds(20))
        }
        let asked = Infranaut_V1_WindowsRequest.with {
            $0.modelID = "w"
            $0.wholeModelOnly = true
        }
        let closed = await shard.windows(asked)
        #expect(closed.windows.map(\.rows) == [4] && closed.windows.allSatisfy { !$0.open })

        // Quiet for over two windows: the traffic-stopped default is due by time, and the tick
        // loads the parked model to judge it.
        await shard.checkpoint()
        await shard.parkIdleModels()
        #expect(await shard.residency == (0, 2))
        while await shard.residency.resident < 1 {
            try #require(ContinuousClock.now < deadline, "the parked model's traffic rule was never judged")
            await shard.closeIdleWindows()
            try await Task.sleep(for: .milliseconds(20))
        }
        let quiet = await shard.alerts(of: .with { $0.modelID = "w" }).alerts
        #expect(quiet.map(\.rule) == ["traffic-stopped"] && quiet.first?.state == .firing, "\(quiet)")

        // A deleted model parked until its retention ended goes with the next op, unloaded.
        guard case .done(let deleted) = await shard.deleteModelAtLeader(.with { $0.name = "p" }, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        await shard.checkpoint()
        await shard.parkIdleModels()
        #expect(await shard.residency == (0, 2))
        let purgeAt = Date(timeIntervalSince1970: Double(deleted.purgeAfterUnixMs) / 1000 + 0.002)
        while Date() < purgeAt { try await Task.sleep(for: .milliseconds(1)) }
        #expect(await shard.ingest(request(model: "q", key: "q1")).status.code == .ok)
        #expect(await shard.residency == (1, 1))
        #expect(await shard.model("p") == nil)

        // After a crash every model starts parked, and reads load them.
        await shard.checkpoint()
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.residency == (0, 2))
        #expect(Set(await recovered.modelIDs) == ["w", "q"])
        #expect(await recovered.windows(asked) == closed)
        #expect(await recovered.status(model: "q")?.rows == 4)
        #expect(await recovered.residency == (2, 0))
    }

    @Test("a parked model whose checkpoint entry is gone: reads refuse retryably, the next op stops the shard")
    func unreadableParkedModel() async throws {
        let harness = try Harness()
        harness.settings.parkIdleModelsAfter = .zero
        let shard = try await harness.shard()
        #expect(await shard.ingest(request(model: "p", key: "p1")).status.code == .ok)
        await shard.checkpoint()
        #expect(await shard.parkIdleModels() == 1)
        try harness.database.delete(StorageKeys.Models.key(shard: 0, model: "p"), in: harness.store.models)

        let read = await shard.status(.with { $0.modelID = "p" })
        #expect(read?.status.code == .unavailable && read?.status.retryable == true, "\(String(describing: read))")
        #expect(await shard.windows(.with { $0.modelID = "p" }).status.code == .unavailable)
        #expect(await shard.model("p")?.status.code == .unavailable)
        #expect(await shard.state == .serving)

        // An op cannot be applied without the model's state: the shard stops rather than diverge.
        let write = await shard.ingest(request(model: "p", key: "p2"))
        #expect(write.status.code == .unavailable)
        #expect(await shard.state != .serving)
    }
}
