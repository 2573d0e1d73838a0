import Cluster
import Foundation
import Testing
import Wire

/// The resident set of a process in bytes (VmRSS in /proc/<pid>/status).
private func residentBytes(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { throw NodeTestError("no VmRSS in /proc/\(pid)/status") }
    return kib << 10
}

@Suite("feature explosion and status paging with a real node", .serialized, .timeLimit(.minutes(3)))
struct LimitProcessTests {
    @Test(
        "25 batches of 4,096 new column names are refused with a message naming the limit, and the node stays under 400 MB"
    )
    func featureExplosionIsRefused() async throws {
        let node = NodeProcess()
        try await node.start()
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        let pid = try #require(node.process?.processIdentifier)
        let accepted = try await call(
            client, ingestRequest(model: "m", key: "base", rows: 1, features: (0..<1_000).map { "base\($0)" }))
        #expect(accepted.ingest.status.code == .ok)

        for batch in 0..<25 {
            let names = (0..<4_096).map { "b\(batch)-\($0)" }
            let response = try await call(
                client, ingestRequest(model: "m", key: "burst\(batch)", rows: 1, features: names))
            let status = response.ingest.status
            #expect(status.code == .invalidArgument)
            #expect(!status.retryable)
            #expect(status.message.contains("would add 4096 new features"), "\(status.message)")
            #expect(status.message.contains("which has 1000"))
            #expect(status.message.contains("the limit is 1000 features per model (--max-features-per-model)"))
        }
        let rss = try residentBytes(pid)
        print("node RSS after the refused explosion: \(rss >> 20) MiB")
        #expect(rss < 400 << 20, "node RSS \(rss >> 20) MiB")

        let status = try await call(client, statusRequest("m")).status
        #expect(status.status.code == .ok)
        #expect(status.featuresTotal == 1_000)
        #expect(status.model.features.count == 1_000)
        #expect(status.nextFeaturesAfter.isEmpty)
        #expect(status.model.batches == 1)
    }

    @Test("infranaut status pages through every feature and prints each once, as JSON and as a table")
    func statusCommandPages() async throws {
        let node = NodeProcess(arguments: ["--max-features-per-model", "2500"])
        try await node.start()
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        let names = (0..<2_500).map { "f\($0)" }
        #expect(
            try await call(client, ingestRequest(model: "m", key: "a", rows: 3, features: names)).ingest.status.code
                == .ok)

        let first = try await call(client, statusRequest("m")).status
        #expect(first.model.features.count == StatusPaging.maxFeatures)
        #expect(!first.nextFeaturesAfter.isEmpty)

        let json = try await runCLI(["status", "--node", node.address, "--model", "m", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let features = try #require(object["features"] as? [[String: Any]])
        let printed = features.compactMap { $0["name"] as? String }
        #expect(printed.count == 2_500)
        #expect(Set(printed) == Set(names))
        #expect(printed == printed.sorted())
        #expect(object["features_total"] as? Int == 2_500)
        #expect(object["rows"] as? Int == 3)
        #expect((features.first?["mean"] as? Double) == 1)

        let some = try await runCLI(["status", "--node", node.address, "--model", "m", "--max-features", "1500"])
        #expect(some.status == 0, "\(some.stderr)")
        let lines = some.stdout.split(separator: "\n")
        #expect(lines.first?.contains("2500 features") == true)
        #expect(lines.count == 1 + 1 + 1_500)  // summary, table header, rows
    }
}
