import Cluster
import Foundation
import Synchronization
import Testing
import Wire

@Suite("infranaut node process", .serialized, .timeLimit(.minutes(3)))
struct NodeProcessTests {
    @Test("kill -9 mid-ingest loses no acknowledged batch, and retries after restart apply exactly once")
    func killNineMidIngest() async throws {
        let node = NodeProcess()
        try await node.start()
        let client = try RequestClient(dial: node.address)
        let acked = Locked<Set<Int>>([])
        let attempted = Locked<Set<Int>>([])
        let rowsPerBatch = 200
        let batches = 100_000  // far more than fit before the kill
        let killAfter = 40  // acknowledged batches before the kill, however fast the machine is
        let killed = Locked(false)
        // Four writers push batches with unique keys until the node dies under them; the kill
        // comes once `killAfter` batches are acknowledged, while the writers are still sending.
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for batch in stride(from: writer, to: batches, by: 4) {
                        attempted.update { _ = $0.insert(batch) }
                        guard
                            let response = try? await call(
                                client, ingestRequest(model: "m\(batch % 3)", key: "b\(batch)", rows: rowsPerBatch),
                                timeout: .seconds(5)),
                            response.ingest.status.code == .ok
                        else { return }
                        acked.update { _ = $0.insert(batch) }
                    }
                }
            }
            group.addTask {
                let enough = try? await eventually(within: .seconds(60)) { acked.value.count >= killAfter }
                node.kill(SIGKILL)
                killed.update { $0 = enough != nil }
            }
        }
        client.close()
        let ackedBeforeCrash = acked.value
        #expect(killed.value, "fewer than \(killAfter) batches were acknowledged within 60 s")
        #expect(ackedBeforeCrash.count >= killAfter)
        #expect(
            ackedBeforeCrash.count < batches,
            "the node died after everything was sent; the test did not crash mid-ingest")

        try await node.start()
        let after = try RequestClient(dial: node.address)
        defer { after.close() }
        var rowsAfterRestart: UInt64 = 0
        for model in 0..<3 {
            let status = try await call(after, statusRequest("m\(model)"))
            rowsAfterRestart += status.status.model.rows
        }
        // Every acknowledged batch is there; batches that were durable but not yet acknowledged may be too.
        #expect(rowsAfterRestart >= UInt64(ackedBeforeCrash.count * rowsPerBatch))

        // Resend everything that was attempted, with the same keys: each batch ends up applied once.
        let sent = attempted.value
        var replayed = 0
        for batch in sent.sorted() {
            let response = try await call(
                after, ingestRequest(model: "m\(batch % 3)", key: "b\(batch)", rows: rowsPerBatch))
            #expect(response.ingest.status.code == .ok)
            if response.ingest.replayed { replayed += 1 }
            if ackedBeforeCrash.contains(batch) {
                #expect(response.ingest.replayed, "acked batch \(batch) was applied again")
            }
        }
        #expect(replayed >= ackedBeforeCrash.count)
        var total: UInt64 = 0
        for model in 0..<3 { total += try await call(after, statusRequest("m\(model)")).status.model.rows }
        #expect(total == UInt64(sent.count * rowsPerBatch))
    }

    @Test("SIGTERM drains and exits 0; the data is there after restart")
    func gracefulShutdown() async throws {
        let node = NodeProcess()
        try await node.start()
        let client = try RequestClient(dial: node.address)
        for i in 0..<10 { _ = try await call(client, ingestRequest(model: "g", key: "k\(i)", rows: 50)) }
        client.close()
        node.kill(SIGTERM)
        #expect(node.terminationStatus == 0)
        try await node.start()
        let again = try RequestClient(dial: node.address)
        defer { again.close() }
        #expect(try await call(again, statusRequest("g")).status.model.rows == 500)
    }

    @Test("bad input gets a clear error and changes nothing")
    func badInput() async throws {
        let node = NodeProcess(arguments: ["--max-request-bytes", "65536"])
        try await node.start()
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        _ = try await call(client, ingestRequest(model: "b", key: "good", rows: 10))

        let malformed = try Infranaut_V1_Response(
            serializedBytes: try await client.request([0xFF, 0xFF, 0xFF, 0x01], timeout: .seconds(5)))
        #expect(malformed.error.code == .invalidArgument)
        #expect(malformed.error.message.contains("malformed frame"))

        let oversized = try await call(client, ingestRequest(model: "b", key: "big", rows: 4_000))
        #expect(oversized.error.code == .tooLarge)
        #expect(oversized.error.message.contains("65536"))

        var unequal = ingestRequest(model: "b", key: "unequal", rows: 10)
        unequal.ingest.batch.columns[2].doubles.values.removeLast()
        let refused = try await call(client, unequal)
        #expect(refused.ingest.status.code == .invalidArgument)
        #expect(refused.ingest.status.message.contains("f2"))
        #expect(!refused.ingest.status.retryable)

        var noVersion = statusRequest("b")
        noVersion.version = 7
        #expect(try await call(client, noVersion).error.message.contains("version 7"))

        let status = try await call(client, statusRequest("b"))
        #expect(status.status.model.rows == 10)
        #expect(status.status.model.batches == 1)
        let missing = try await call(client, statusRequest("nobody"))
        #expect(missing.status.status.code == .notFound)
    }

    @Test("push and status through the CLI: rows, type mismatches with row and column, JSON shape")
    func cliPushAndStatus() async throws {
        let node = NodeProcess()
        try await node.start()
        let dir = TestScratch.track(
            FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-cli-\(UUID().uuidString)").path)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let generated = try await runCLI(["generate", "--rows", "2500", "--features", "3", "--out", dir + "/a.csv"])
        #expect(generated.status == 0, "\(generated.stderr)")
        let push = try await runCLI([
            "push", "--node", node.address, "--model", "cli", "--file", dir + "/a.csv",
            "--batch-size", "1000", "--id-column", "id", "--time-column", "ts", "--json",
        ])
        #expect(push.status == 0, "\(push.stderr)")
        let pushed = try JSONSerialization.jsonObject(with: Data(push.stdout.utf8)) as? [String: Any]
        #expect(pushed?["rows_accepted"] as? Int == 2500)
        #expect(pushed?["batches"] as? Int == 3)

        try "f0,f1\n1.5,x\nnot-a-number,y\n2.5,z\n".write(toFile: dir + "/b.csv", atomically: true, encoding: .utf8)
        let mixed = try await runCLI(["push", "--node", node.address, "--model", "cli", "--file", dir + "/b.csv"])
        #expect(mixed.status == 0, "\(mixed.stderr)")
        #expect(mixed.stdout.contains("row 2, column f0: expected double, got \"not-a-number\""), "\(mixed.stdout)")
        #expect(mixed.stdout.contains("column f1: expected double"), "\(mixed.stdout)")

        let status = try await runCLI(["status", "--node", node.address, "--model", "cli", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        #expect(json?["model"] as? String == "cli")
        #expect(json?["rows"] as? Int == 2503)
        let features = json?["features"] as? [[String: Any]] ?? []
        let f0 = features.first { $0["name"] as? String == "f0" }
        #expect(f0?["type_mismatches"] as? Int == 1)
        #expect(f0?["count"] != nil && f0?["missing"] != nil && f0?["mean"] != nil && f0?["variance"] != nil)
        #expect(features.contains { $0["name"] as? String == "segment" && $0["type"] as? String == "string" })

        let missingFile = try await runCLI([
            "push", "--node", node.address, "--model", "cli", "--file", dir + "/nope.csv",
        ])
        #expect(missingFile.status != 0)
        #expect(missingFile.stderr.contains("nope.csv: no such file"), "\(missingFile.stderr)")
        let after = try await runCLI(["status", "--node", node.address, "--model", "cli", "--json"])
        #expect(
            (try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])?["rows"] as? Int == 2503
        )
    }
}

/// A value shared between test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    var value: Value { mutex.withLock { $0 } }
    func update(_ body: (inout Value) -> Void) { mutex.withLock { body(&$0) } }
}
