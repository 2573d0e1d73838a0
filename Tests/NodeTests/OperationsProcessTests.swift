import AsyncHTTPClient
import Cluster
import Foundation
import NIOCore
import Testing
import Wire

/// GET `url`: the status code and the body as text.
private func get(_ url: String) async throws -> (status: UInt, body: String) {
    var request = HTTPClientRequest(url: url)
    request.method = .GET
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 4 << 20)
    return (response.status.code, String(buffer: body))
}

/// The value of the sample `name{labels}` (labels as written, sorted) in a Prometheus text page.
private func sample(_ page: String, _ series: String) -> Double? {
    for line in page.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Double(line.dropFirst(series.count + 1))
    }
    return nil
}

@Suite("operators' HTTP listener on real nodes", .serialized, .timeLimit(.minutes(3)))
struct OperationsProcessTests {
    @Test(
        "healthz and readyz answer on every node of a cluster; metrics count the requests, rows, members and shards; a node that cannot reach its seed is alive but not ready"
    )
    func healthReadinessMetrics() async throws {
        let nodes = try await startCluster(["h1", "h2", "h3"])
        for node in nodes {
            #expect(!node.httpAddress.isEmpty)
            #expect(try await get(node.httpAddress + "/healthz") == (200, "ok\n"))
        }
        let ready = try await eventually(within: .seconds(30)) {
            for node in nodes where try await get(node.httpAddress + "/readyz").status != 200 { return false }
            return true
        }
        #expect(ready != nil)

        let client = try RequestClient(dial: nodes[0].address)
        defer { client.close() }
        #expect(await ingestUntilAcked(client, model: "metered", key: "m1", rows: 10))
        let bad = try await call(client, ingestRequest(model: "", key: "m2", rows: 1))
        #expect(bad.ingest.status.code == .invalidArgument || bad.error.code == .invalidArgument)
        let page = try await get(nodes[0].httpAddress + "/metrics")
        #expect(page.status == 200)
        #expect((sample(page.body, #"infranaut_client_requests_total{request="ingest",outcome="ok"}"#) ?? 0) >= 1)
        #expect(
            sample(page.body, #"infranaut_client_requests_total{request="ingest",outcome="invalid_argument"}"#) == 1)
        #expect(sample(page.body, "infranaut_ingest_rows_total") == 10, "\(page.body)")
        #expect(sample(page.body, #"infranaut_members{status="alive"}"#) == 3)
        #expect((sample(page.body, "infranaut_ingest_ack_seconds_count") ?? 0) >= 2)
        #expect(sample(page.body, "infranaut_ready") == 1)
        // Every shard is led by one node: the leaders add up to the shard count.
        var leaders = 0.0
        for node in nodes {
            leaders +=
                sample(try await get(node.httpAddress + "/metrics").body, #"infranaut_shards{role="leader"}"#) ?? 0
        }
        #expect(leaders == Double(NodeProcess.defaultShards))
        // The WAL and the data directory on the node that took the batch; the model's rows on the
        // node that leads its shard (per-model series come from leaders only).
        #expect((sample(page.body, "infranaut_wal_groups_total") ?? 0) >= 1)
        #expect((sample(page.body, "infranaut_wal_sync_seconds_count") ?? 0) >= 1)
        #expect((sample(page.body, "infranaut_data_directory_bytes") ?? 0) > 0)
        #expect((sample(page.body, "infranaut_data_filesystem_free_bytes") ?? 0) > 0)
        #expect(sample(page.body, #"infranaut_rocksdb_pending_compaction_bytes{family="ops"}"#) != nil, "\(page.body)")
        var modelRows = 0.0
        for node in nodes {
            modelRows +=
                sample(try await get(node.httpAddress + "/metrics").body, #"infranaut_model_rows{model="metered"}"#)
                ?? 0
        }
        #expect(modelRows == 10)
        // Peers' Raft traffic is counted apart from clients'.
        #expect((sample(page.body, #"infranaut_peer_requests_total{request="raft",outcome="ok"}"#) ?? 0) > 0)

        // A node whose seed does not answer: alive, not ready, and it says why.
        let lonely = NodeProcess(arguments: ["--node-id", "h9", "--seed", "tcp://127.0.0.1:1"])
        try await lonely.start()
        #expect(try await get(lonely.httpAddress + "/healthz").status == 200)
        let refused = try await get(lonely.httpAddress + "/readyz")
        #expect(refused.status == 503 && refused.body.contains("not joined"), "\(refused)")
        #expect(try await get(lonely.httpAddress + "/nothing").status == 404)
    }
}

@Suite("start's settings from a file, the environment and flags", .serialized, .timeLimit(.minutes(2)))
struct StartConfigProcessTests {
    @Test(
        "flags override INFRANAUT_* variables, which override the file; config print names each source; unknown keys and wrong types name the file and line; a node runs from the file with JSON logs"
    )
    func layers() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("node.yaml").path
        try """
        data-dir: \(directory.path)/data
        shards: 16
        node-id: from-file
        log-format: json
        seed:
          - tcp://127.0.0.1:1
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let printed = try await runCLI(
            ["config", "print", "--config", file, "--shards", "8", "--json"],
            environment: ["INFRANAUT_NODE_ID": "from-env", "INFRANAUT_CLUSTER_SECRET": "s3cret-value"])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(!printed.stdout.contains("s3cret-value"), "the secret is never printed")
        let rows = try #require(
            try JSONSerialization.jsonObject(with: Data(printed.stdout.utf8)) as? [[String: String]])
        func row(_ key: String) -> [String: String]? { rows.first { $0["key"] == key } }
        #expect(row("shards")?["value"] == "8" && row("shards")?["source"] == "flag")
        #expect(row("node-id")?["value"] == "from-env" && row("node-id")?["source"] == "env INFRANAUT_NODE_ID")
        #expect(row("data-dir")?["source"] == "file \(file):1")
        #expect(row("seed")?["value"] == "tcp://127.0.0.1:1" && row("seed")?["source"] == "file \(file):5")
        #expect(row("replication-factor")?["source"] == "default")
        #expect(row("cluster-secret")?["value"] == "*****")

        let wrong = directory.appendingPathComponent("wrong.yaml").path
        try "data-dir: /tmp/x\nshard: 64\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let unknown = try await runCLI(["start", "--config", wrong])
        #expect(unknown.status == 64 && unknown.stderr.contains("\(wrong):2: shard: unknown key"), "\(unknown.stderr)")
        try "max-models: lots\n".write(toFile: wrong, atomically: true, encoding: .utf8)
        let typed = try await runCLI(["start", "--config", wrong])
        #expect(typed.status == 64 && typed.stderr.contains("\(wrong):1: max-models: \"lots\" is not a whole number"))

        // A node from the file (the test's own flags override its data dir, listeners and shards;
        // the seed is dropped so it forms a cluster of its own): its log lines are JSON objects.
        try """
        node-id: from-file
        log-format: json
        log-level: info
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let node = NodeProcess(arguments: ["--config", file])
        try await node.start()
        let members = try await runCLI(["members", "--node", node.address, "--json"])
        #expect(members.stdout.contains("from-file"), "\(members.stdout)")
        let log = try String(contentsOfFile: node.logPath, encoding: .utf8)
        let first = try #require(log.split(separator: "\n").first { $0.hasPrefix("{") })
        let object = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: String]
        #expect(object?["level"] != nil && object?["message"] != nil && object?["time"] != nil, "\(first)")
    }
}

@Suite("backups of a running node", .serialized, .timeLimit(.minutes(2)))
struct BackupProcessTests {
    @Test(
        "infranaut backup makes a checkpoint while the node runs; a node started from the copy holds every acknowledged row; clients may not ask, and names are checked"
    )
    func backupAndRestore() async throws {
        let node = NodeProcess(arguments: ["--node-id", "b1"])
        try await node.start()
        let client = try RequestClient(dial: node.address)
        defer { client.close() }
        for key in ["k1", "k2", "k3"] { #expect(await ingestUntilAcked(client, model: "kept", key: key, rows: 100)) }

        let made = try await runCLI([
            "backup", "--node", node.address, "--name", "first", "--cluster-secret-file", NodeProcess.secretFile,
            "--json",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let path = try #require(
            (try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["path"] as? String)
        #expect(path.hasSuffix("/backups/first"))
        let again = try await runCLI([
            "backup", "--node", node.address, "--name", "first", "--cluster-secret-file", NodeProcess.secretFile,
        ])
        #expect(again.status != 0 && again.stderr.contains("exists already"), "\(again.stderr)")
        let badName = try await runCLI([
            "backup", "--node", node.address, "--name", "../x", "--cluster-secret-file", NodeProcess.secretFile,
        ])
        #expect(badName.status != 0 && badName.stderr.contains("backup.name"), "\(badName.stderr)")
        // On the client listener it is refused: only holders of the secret may write into the
        // node's data directory.
        let asClient = try await call(
            client,
            .with {
                $0.version = 1
                $0.backup = .with { $0.name = "sneaky" }
            })
        #expect(asClient.error.code == .permissionDenied, "\(asClient)")

        // A row acknowledged after the copy is not in it.
        #expect(await ingestUntilAcked(client, model: "kept", key: "k4", rows: 100))
        node.kill(SIGTERM)

        let restored = FileManager.default.temporaryDirectory.appendingPathComponent("restored-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: restored, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path, toPath: restored + "/rocksdb")
        let revived = NodeProcess(dataDirectory: restored, arguments: ["--node-id", "b1"])
        try await revived.start()
        let status = try await runCLI(["status", "--node", revived.address, "--model", "kept", "--json"])
        let rows = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["rows"] as? Int
        #expect(rows == 300, "\(status.stdout)\(status.stderr)")
    }
}
