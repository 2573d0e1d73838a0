import Cluster
import Foundation
import Testing
import Wire

@testable import Drill

@Suite("failover drill", .serialized, .timeLimit(.minutes(3)))
struct DrillTests {
    @Test("infranaut drill kills a node under load and accounts for every acknowledged record")
    func drillPasses() async throws {
        let run = try await runCLI([
            "drill", "--nodes", "3", "--kill", "1", "--duration", "9", "--rate", "200", "--shards", "64", "--json",
        ])
        #expect(run.status == 0, "drill failed:\n\(run.stdout)\n\(run.stderr)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            "no JSON report:\n\(run.stdout)\n\(run.stderr)")
        #expect(report["passed"] as? Bool == true)
        #expect(report["records_lost"] as? Int == 0)
        #expect(report["records_duplicated"] as? Int == 0)
        // A load, not a rate: enough batches on every node's models for the audit to mean something.
        // How many fit in 9 s depends on the machine: each of the 4 senders waits for its ack, and
        // one that holds a batch of the victim's models waits through detection; on a busy CI
        // machine 310 were acknowledged where an idle one does ~1,850.
        #expect((report["batches_acknowledged"] as? Int ?? 0) >= 100, "the load barely ran: \(report)")
        let failures = try #require(report["failures"] as? [[String: Any]])
        #expect(failures.count == 1)
        #expect(failures.first?["detection_seconds"] is Double, "the kill was not detected: \(failures)")
        #expect(failures.first?["recovery_seconds"] is Double, "ingest did not recover: \(failures)")
        #expect((failures.first?["affected_models"] as? [String])?.isEmpty == false)
    }

    @Test("the drill refuses to kill every replica of a shard or the majority")
    func drillRefusesImpossibleKills() async throws {
        let tooMany = try await runCLI(["drill", "--nodes", "5", "--kill", "2"])
        #expect(tooMany.status != 0)
        #expect(tooMany.stderr.contains("replication factor 3"), "\(tooMany.stderr)")
        let noMajority = try await runCLI(["drill", "--nodes", "3", "--kill", "2", "--replication-factor", "3"])
        #expect(noMajority.status != 0)
        #expect(noMajority.stderr.contains("leaves no majority"))
    }

    /// What the partition drill measures must be there whatever the replication underneath does:
    /// the phase, its detection and failover, the writes the minority acknowledged, the recovery
    /// after the heal, and an audit of every batch. (Whether any batch was lost is the next test's
    /// business.)
    @Test("infranaut drill --partition isolate measures detection, failover and recovery, and audits every batch")
    func partitionDrillReports() async throws {
        let run = try await runCLI([
            "drill", "--partition", "isolate", "--nodes", "3", "--duration", "27", "--rate", "100", "--json",
        ])
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            "no JSON report:\n\(run.stdout)\n\(run.stderr)")
        #expect(report["partition"] as? String == "isolate")
        let rounds = try #require(report["partitions"] as? [[String: Any]], "\(report)")
        let phases = try #require(rounds.first?["phases"] as? [[String: Any]], "\(rounds)")
        #expect(phases.count == 1)
        let phase = try #require(phases.first)
        #expect((phase["minority"] as? [String])?.count == 1, "\(phase)")
        #expect((phase["majority"] as? [String])?.count == 2, "\(phase)")
        // The isolated node answers the client at once or after a forward or replication timeout
        // (2 s at most); the majority takes its models over once it declares it dead (~3 s; the
        // partition holds 9 s).
        let detection = try #require(phase["detection_seconds"] as? Double, "nothing refused on the minority: \(phase)")
        #expect(detection < 5, "\(phase)")
        #expect(phase["failover_seconds"] is Double, "the majority side never took every model over: \(phase)")
        #expect(phase["minority_acks"] is Int && phase["minority_acks_without_replica_majority"] is Int)
        #expect(rounds.first?["recovery_seconds"] is Double, "no recovery after the heal: \(rounds)")
        #expect((report["batches_acknowledged"] as? Int ?? 0) >= 100, "the load barely ran: \(report)")
        #expect(report["records_lost"] is Int && report["records_duplicated"] is Int)
    }

    @Test(
        "a partition loses no acknowledged record, duplicates none, the minority commits nothing, and every model takes writes within 10 s of the heal",
        arguments: ["split", "isolate", "bridge", "flap"])
    func partitionDrillPasses(scenario: String) async throws {
        // Primary-backup replication failed this in release runs (5 nodes, 30 s): it lost 1,420
        // (split), 13,400 (isolate) and 2,420 (flap) acknowledged records (docs/benchmarks.md).
        let run = try await runCLI([
            "drill", "--partition", scenario, "--duration", "24", "--rate", "200", "--shards", "64", "--json",
        ])
        #expect(run.status == 0, "drill failed:\n\(run.stdout)\n\(run.stderr)")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
            "no JSON report:\n\(run.stdout)\n\(run.stderr)")
        #expect(report["records_lost"] as? Int == 0)
        #expect(report["records_duplicated"] as? Int == 0)
        #expect(report["minority_acks_without_replica_majority"] as? Int == 0)
        #expect((report["recovery"] as? [String: Double])?["max"].map { $0 <= 10 } == true, "\(report)")
    }

    @Test("partition options are checked before anything starts")
    func partitionOptionsChecked() async throws {
        let cases: [([String], String)] = [
            (["--partition", "sideways"], "--partition sideways is not a scenario; use split, isolate, bridge, flap"),
            (["--partition", "split", "--kill", "2"], "--kill with --partition is 0 or 1"),
            (["--partition", "split", "--nodes", "2"], "--partition needs at least 3 nodes"),
            (["--partition", "flap", "--pause", "1"], "--pause does not combine with --partition"),
            (["--partition", "isolate", "--duration", "6"], "--duration must be at least 9 s with --partition"),
        ]
        for (arguments, says) in cases {
            let run = try await runCLI(["drill"] + arguments)
            #expect(run.status == 64, "\(arguments): \(run.status) \(run.stderr)")
            #expect(run.stderr.contains(says), "\(arguments): \(run.stderr)")
        }
    }

    @Test("a wait that times out says why its last check failed, and nothing when the check only said no")
    func waitNamesLastFailure() async throws {
        let failing = await #expect(throws: DrillError.self) {
            try await waitUntil(timeout: .milliseconds(120), "the receipts") { throw DrillError("connection refused") }
        }
        #expect(
            failing?.description
                == "the receipts not met within 0.12 seconds; the last check failed: connection refused")
        let notYet = await #expect(throws: DrillError.self) {
            try await waitUntil(timeout: .milliseconds(120), "the receipts") { false }
        }
        #expect(notYet?.description == "the receipts not met within 0.12 seconds")
    }

    /// The audit must be able to fail: a key the cluster never saw but the ledger says was
    /// acknowledged is a loss, and a batch the cluster holds under a key the ledger does not list is
    /// counted against the receipts.
    @Test("the drill's audit detects a missing acknowledged batch and an extra applied batch")
    func auditDetectsLossAndExtras() async throws {
        let node = NodeProcess()
        try await node.start()
        defer { node.kill() }
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        let model = "audit-model"
        for key in ["k1", "k2", "not-in-ledger"] {
            let reply = try await call(client, ingestRequest(model: model, key: key, rows: 5))
            #expect(reply.outcome.code == .ok)
        }
        let now = ContinuousClock.now
        func batch(_ key: String, acknowledged: Bool) -> SentBatch {
            SentBatch(model: model, key: key, rows: 5, firstSent: now, acknowledged: acknowledged ? now : nil)
        }

        var clean = DrillReport(nodes: 1, killPerRound: 0, rounds: 0, roundSeconds: 0)
        try await Drill.audit(
            batches: [
                batch("k1", acknowledged: true), batch("k2", acknowledged: true),
                batch("not-in-ledger", acknowledged: false),
            ],
            models: [model], asking: [node.address], into: &clean)
        #expect(clean.passed, "\(clean.problems)")
        #expect(clean.recordsLost == 0 && clean.recordsDuplicated == 0)
        #expect(clean.batchesUnresolved == 1)

        var broken = DrillReport(nodes: 1, killPerRound: 0, rounds: 0, roundSeconds: 0)
        try await Drill.audit(
            batches: [
                batch("k1", acknowledged: true), batch("k2", acknowledged: true),
                batch("never-sent", acknowledged: true),
            ],
            models: [model], asking: [node.address], into: &broken)
        #expect(!broken.passed)
        #expect(broken.recordsLost == 5)
        #expect(
            broken.recordsDuplicated == 5, "the batch under an unlisted key is one more than the receipts account for")
    }

    @Test("receipts requests are checked: empty model, no keys, too many keys")
    func receiptsValidation() async throws {
        let node = NodeProcess()
        try await node.start()
        defer { node.kill() }
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        func receipts(_ model: String, _ keys: [String]) async throws -> Infranaut_V1_Status {
            try await call(
                client,
                .with {
                    $0.version = 1
                    $0.receipts = .with {
                        $0.modelID = model
                        $0.idempotencyKeys = keys
                    }
                }
            ).outcome
        }
        let noModel = try await receipts("", ["a"])
        #expect(noModel.code == .invalidArgument && noModel.message.contains("model_id"))
        let noKeys = try await receipts("m", [])
        #expect(noKeys.code == .invalidArgument && noKeys.message.contains("idempotency_keys"))
        let tooMany = try await receipts("m", (0...10_000).map { "k\($0)" })
        #expect(tooMany.code == .tooLarge && tooMany.message.contains("10000"))
        let unknown = try await receipts("m", ["a"])
        #expect(unknown.code == .ok)
    }
}
