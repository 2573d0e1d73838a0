import Foundation
import Testing
import Wire

@testable import Actors

private func applying(_ name: String, threshold: Double = 0.1, dryRun: Bool = false) -> Infranaut_V1_ApplyModelRequest {
    .with {
        $0.dryRun = dryRun
        $0.spec = cityAndX(name)
        $0.spec.drift = .with { $0.threshold = threshold }
    }
}

private let later = ContinuousClock.now + .seconds(3_600)

@Suite("model specs in the shard")
struct ShardSpecTests {
    @Test("specs, generations and reference profiles are in the checkpoint and the log, and survive a crash")
    func specsSurviveCrash() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        guard case .done(let created) = await shard.applySpecAtLeader(applying("m"), deadline: later),
            case .done(let same) = await shard.applySpecAtLeader(applying("m"), deadline: later),
            case .done(let dry) = await shard.applySpecAtLeader(
                applying("m", threshold: 0.3, dryRun: true), deadline: later)
        else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(created.outcome == .created && created.generation == 1)
        #expect(same.outcome == .unchanged && same.generation == 1)
        #expect(dry.outcome == .configured && dry.generation == 2)
        var reference = request(key: "ref-1", rows: 6)
        reference.batch.reference = true
        reference.batch.version = "v1"
        #expect(await shard.ingest(reference).status.code == .ok)
        await shard.checkpoint()
        // After the checkpoint: one more change, in the log only.
        guard case .done(let configured) = await shard.applySpecAtLeader(applying("m", threshold: 0.3), deadline: later)
        else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(configured.outcome == .configured && configured.generation == 2)
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        let model = await recovered.model("m")
        #expect(model?.generation == 2 && model?.spec.drift.threshold == 0.3 && model?.inferred == false)
        // Without a table of its own the node stamps the built-in defaults.
        #expect(model?.spec.defaultsStamped == true && model?.spec.defaultAlerts == ModelMonitor.builtInDefaults)
        let status = await recovered.status(.with { $0.modelID = "m" })
        #expect(status?.model.rows == 0)
        #expect(status?.model.referenceRows == ["v1": 6])
    }

    @Test("a deleted model is removed once its retention passed, by a later op's time, also from storage")
    func deletionPurges() async throws {
        let harness = try Harness()
        harness.settings.deletedModelRetention = .zero
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        #expect(await shard.ingest(request(model: "gone", key: "g1")).status.code == .ok)
        #expect(await shard.ingest(request(model: "kept", key: "k1")).status.code == .ok)
        await shard.checkpoint()
        guard case .done(let deleted) = await shard.deleteModelAtLeader(.with { $0.name = "gone" }, deadline: later)
        else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(deleted.status.code == .ok && deleted.purgeAfterUnixMs > 0)
        // The next op of the shard, accepted after the purge time, removes it.
        let waited = Date(timeIntervalSince1970: Double(deleted.purgeAfterUnixMs) / 1000 + 0.002)
        while Date() < waited { try await Task.sleep(for: .milliseconds(1)) }
        #expect(await shard.ingest(request(model: "kept", key: "k2")).status.code == .ok)
        #expect(await shard.model("gone") == nil)
        await shard.checkpoint()
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.model("gone") == nil)
        #expect(await recovered.status(.with { $0.modelID = "kept" })?.model.rows == 8)
        guard case .done(let unknown) = await recovered.deleteModelAtLeader(.with { $0.name = "gone" }, deadline: later)
        else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(unknown.status.code == .notFound)
    }

    @Test(
        "closed windows' results are written by the checkpoint, late rows reach stored results, and a crash keeps both")
    func windowResultsSurviveCrash() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        var spec = applying("w")
        spec.spec.window = .with { $0.sizeMs = 60_000 }
        guard case .done(let created) = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(created.outcome == .created)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now / 60_000 - 10) * 60_000
        func timed(_ key: String, at start: Int64, rows: Int = 4) -> Infranaut_V1_IngestRequest {
            var timed = request(model: "w", key: key, rows: rows)
            timed.batch.eventTimeUnixMs = (0..<rows).map { start + Int64($0) }
            return timed
        }
        // Minute 0 closes when minute 1 starts; then it is checkpointed, then late rows arrive.
        #expect(await shard.ingest(timed("m0", at: base)).status.code == .ok)
        #expect(await shard.ingest(timed("m1", at: base + 60_000)).status.code == .ok)
        await shard.checkpoint()
        #expect(await shard.ingest(timed("late", at: base + 5, rows: 3)).status.code == .ok)
        #expect(await shard.ingest(timed("m2", at: base + 120_000)).status.code == .ok)
        let asked = Infranaut_V1_WindowsRequest.with {
            $0.modelID = "w"
            $0.wholeModelOnly = true
        }
        let before = await shard.windows(asked)
        #expect(before.windows.map(\.rows) == [4, 4])
        #expect(before.windows.map(\.lateRows) == [3, 0])
        await shard.checkpoint()
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.windows(asked) == before)
        // The newest closed whole-model window is kept with the model for status.
        let latest = await recovered.status(.with { $0.modelID = "w" })?.model.latestWindows
        #expect(latest?.map(\.startUnixMs) == [base + 60_000])
        // Segment windows are kept apart: the city column holds two values.
        let cities = await recovered.windows(
            .with {
                $0.modelID = "w"
                $0.segmentColumn = "city"
                $0.segmentValue = "c0"
            })
        #expect(cities.windows.map(\.rows) == [2, 2])
    }

    @Test("a read of the last windows of each series is the tail of the full read, stored and pending alike")
    func lastWindowsAreTheNewest() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var spec = applying("t")
        spec.spec.window = .with { $0.sizeMs = 60_000 }
        guard case .done = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let base = (now / 60_000 - 20) * 60_000
        // 12 minutes, one batch each (11 close); the first 7 closed ones are checkpointed (stored),
        // the rest only pending; a late batch adds rows to a stored one.
        for minute in 0..<12 {
            var batch = request(model: "t", key: "m\(minute)", rows: 4)
            batch.batch.eventTimeUnixMs = (0..<4).map { base + Int64(minute) * 60_000 + Int64($0) }
            #expect(await shard.ingest(batch).status.code == .ok)
            if minute == 7 { await shard.checkpoint() }
        }
        var late = request(model: "t", key: "late", rows: 2)
        late.batch.eventTimeUnixMs = [base + 6 * 60_000, base + 6 * 60_000 + 1]
        #expect(await shard.ingest(late).status.code == .ok)
        let full = await shard.windows(.with { $0.modelID = "t" })
        #expect(full.status.code == .ok && !full.truncated)
        for n in [1, 3, 6, 20] {
            let last = await shard.windows(
                .with {
                    $0.modelID = "t"
                    $0.last = UInt32(n)
                })
            // The full read's newest n of each series (whole model, city=c0, city=c1), in its order.
            var perSeries: [String: Int] = [:]
            let expected = full.windows.reversed().filter { w in
                let series = "\(w.segmentColumn)=\(w.segmentValue)"
                perSeries[series, default: 0] += 1
                return perSeries[series]! <= n
            }.reversed()
            #expect(last.windows == Array(expected), "last \(n)")
        }
        #expect(full.windows.filter { $0.segmentColumn.isEmpty }.count == 11)
        #expect(full.windows.first { $0.segmentColumn.isEmpty && $0.startUnixMs == base + 6 * 60_000 }?.lateRows == 2)
    }

    @Test("rows the windows refused stay counted across a spec change, a checkpoint and a crash")
    func rejectedRowsSurvive() async throws {
        let harness = try Harness()
        harness.settings.logRetainedEntries = 0
        let shard = try await harness.shard()
        guard case .done = await shard.applySpecAtLeader(applying("r"), deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var ahead = request(model: "r", key: "ahead", rows: 3)
        // Two rows a day ahead of the op's time (refused), one now.
        ahead.batch.eventTimeUnixMs = [now + 86_400_000, now + 86_400_000, now]
        #expect(await shard.ingest(ahead).status.code == .ok)
        let asked = Infranaut_V1_WindowsRequest.with { $0.modelID = "r" }
        #expect(await shard.windows(asked).rejectedFutureRows == 2)
        guard case .done = await shard.applySpecAtLeader(applying("r", threshold: 0.3), deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(await shard.windows(asked).rejectedFutureRows == 2)
        await shard.checkpoint()
        try harness.crashAndReopen()
        let recovered = try await harness.shard()
        #expect(await recovered.windows(asked).rejectedFutureRows == 2)
    }

    @Test("a value that does not fit its feature's type counts as a type mismatch in its own row's window")
    func mismatchesLandInTheirWindow() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var spec = applying("mm")
        spec.spec.window = .with { $0.sizeMs = 60_000 }
        guard case .done = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        let base = (Int64(Date().timeIntervalSince1970 * 1000) / 60_000 - 10) * 60_000
        var typed = request(model: "mm", key: "typed", rows: 2)
        typed.batch.eventTimeUnixMs = [base, base]
        #expect(await shard.ingest(typed).status.code == .ok)
        // Rows 0 and 1 in minute 0, rows 2 and 3 in minute 1; "abc" (row 3) does not fit x.
        var mixed = request(model: "mm", key: "mixed", rows: 4)
        mixed.batch.columns[0] = .with {
            $0.name = "x"
            $0.strings = .with { $0.values = ["1", "2", "3", "abc"] }
        }
        mixed.batch.eventTimeUnixMs = [base, base + 1, base + 60_000, base + 60_001]
        let answer = await shard.ingest(mixed)
        #expect(answer.status.code == .ok && answer.typeMismatchCount == 1)
        let found = await shard.windows(
            .with {
                $0.modelID = "mm"
                $0.wholeModelOnly = true
                $0.includeOpen = true
            })
        let x = found.windows.filter { $0.startUnixMs >= base }.map {
            $0.features.first { $0.name == "x" }?.typeMismatches
        }
        #expect(x == [0, 1], "\(found.windows.map(\.startUnixMs)) \(x)")
    }

    @Test("results of windows past the spec's retention are deleted, also for a model that sends nothing more")
    func retentionDeletes() async throws {
        let harness = try Harness()
        let shard = try await harness.shard()
        var spec = applying("old")
        spec.spec.window = .with { $0.sizeMs = 60_000 }
        spec.spec.retention = .with { $0.windowsMs = 600_000 }
        guard case .done = await shard.applySpecAtLeader(spec, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        // Far from the cutoff on both sides, so a slow run cannot move a window across it: the
        // kept window ends 2 minutes before the minute the test started in, the expired ones
        // about 29 minutes before, against a retention of 10 minutes. (With 2 minutes and a
        // window ending 1 minute back, a run that crossed a minute boundary deleted it.)
        let minute = Int64(Date().timeIntervalSince1970 * 1000) / 60_000 * 60_000
        let base = minute - 30 * 60_000
        let kept = minute - 180_000
        for (index, start) in [base, base + 60_000, kept, kept + 60_000].enumerated() {
            var timed = request(model: "old", key: "k\(index)", rows: 2)
            timed.batch.eventTimeUnixMs = [start, start]
            #expect(await shard.ingest(timed).status.code == .ok)
        }
        await shard.checkpoint()
        let asked = Infranaut_V1_WindowsRequest.with {
            $0.modelID = "old"
            $0.wholeModelOnly = true
        }
        #expect(await shard.windows(asked).windows.map(\.startUnixMs) == [base, base + 60_000, kept])
        await shard.enforceRetention()
        // Ended more than 10 minutes ago: the first two go; the one that ended 2 minutes ago stays.
        #expect(await shard.windows(asked).windows.map(\.startUnixMs) == [kept])
    }
}

@Suite("cluster alert defaults in the shard")
struct AlertDefaultsShardTests {
    @Test(
        "the leader stamps its node's default rules into each spec it accepts, drops a client's, and checks disabled names against them"
    )
    func leaderStampsDefaults() async throws {
        let harness = try Harness()
        let table: [Infranaut_V1_AlertRule] = [
            .with {
                $0.name = "team-drift"
                $0.metric = "drift_share"
                $0.condition = .above(0.2)
                $0.notify = ["oncall"]
            }
        ]
        harness.settings.alertDefaults = table
        let shard = try await harness.shard()
        var request = applying("d")
        // A client cannot give itself other defaults.
        request.spec.defaultAlerts = [.with { $0.name = "sneaky" }]
        request.spec.defaultsStamped = true
        guard case .done(let created) = await shard.applySpecAtLeader(request, deadline: later) else {
            Issue.record("the shard does not lead")
            return
        }
        #expect(created.status.code == .ok && created.outcome == .created)
        let stored = await shard.model("d")?.spec
        #expect(stored?.defaultsStamped == true && stored?.defaultAlerts == table)
        // Applying the same spec again changes nothing.
        guard case .done(let same) = await shard.applySpecAtLeader(applying("d"), deadline: later) else { return }
        #expect(same.outcome == .unchanged)

        // Only the node's defaults may be turned off: the built-in ones are not its defaults here.
        var off = applying("d")
        off.spec.alerts = [
            .with {
                $0.name = "dataset-drift"
                $0.disabled = true
            }
        ]
        guard case .done(let refused) = await shard.applySpecAtLeader(off, deadline: later) else { return }
        #expect(refused.status.code == .invalidArgument)
        #expect(refused.problems.map(\.path) == ["spec.alerts[0].disabled"], "\(refused.problems)")
        off.spec.alerts[0].name = "team-drift"
        guard case .done(let accepted) = await shard.applySpecAtLeader(off, deadline: later) else { return }
        #expect(accepted.status.code == .ok && accepted.outcome == .configured)
    }
}
