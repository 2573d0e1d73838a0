import Cluster
import Drill
import Foundation
import Testing
import Wire

/// A real `infranaut` process for end-to-end tests. Logs go to a file that is printed when a test
/// fails to get the node up; the process is killed when the object goes away.
final class NodeProcess: @unchecked Sendable {
    // Only touched from the test's own task.
    let dataDirectory: String
    let logPath: String
    private(set) var process: Process?
    private(set) var address = ""
    private(set) var clusterAddress = ""
    /// The operators' HTTP listener (`http://HOST:PORT`), empty when it is off.
    private(set) var httpAddress = ""
    private(set) var peerAddress = ""
    let extraArguments: [String]

    static var binary: String {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        return bundleDirectory.appendingPathComponent("infranaut").path
    }

    var arguments: [String] { extraArguments }

    /// The cluster secret every test node gets unless its arguments name another.
    static let secretFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-test-secret-\(getpid())")
            .path
        _ = try? writeClusterSecret(to: path)
        return TestScratch.track(path)
    }()

    static var secret: ClusterSecret {
        get throws { try ClusterSecret(file: secretFile) }
    }

    init(dataDirectory: String? = nil, arguments: [String] = []) {
        let dir =
            dataDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-node-\(UUID().uuidString)").path
        self.dataDirectory = TestScratch.track(dir)
        logPath = TestScratch.track(dir + ".log")
        extraArguments = arguments
    }

    /// Shards of a test node's data set unless its arguments say otherwise.
    static let defaultShards = 64

    /// Starts the node on a free port and waits (up to 20 s) for its ready line.
    func start() async throws {
        try await offPool { try self.startBlocking() }
    }

    private func startBlocking() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments =
            [
                "start", "--data-dir", dataDirectory, "--client-listen", "tcp://127.0.0.1:0",
                "--cluster-listen", "tcp://127.0.0.1:0", "--peer-listen", "tcp://127.0.0.1:0",
            ]
            + (extraArguments.contains("--cluster-secret-file") ? [] : ["--cluster-secret-file", Self.secretFile])
            // 64 shards unless a test asks for more: several clusters run side by side on two cores
            // while the suite runs, and the shape itself is tested where it matters.
            + (extraArguments.contains("--shards") ? [] : ["--shards", "\(Self.defaultShards)"])
            // Several nodes run on one host: each its own HTTP port.
            + (extraArguments.contains("--http-listen") ? [] : ["--http-listen", "127.0.0.1:0"])
            + extraArguments
        // A crash must end the process promptly: full symbolication of the debug binary kept a node
        // that had crashed (an nng panic) alive and silent for over 15 minutes, so a test waiting
        // on it hung instead of failing. Function names without line numbers are enough.
        process.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "symbolicate=fast"]) {
            current, _ in current
        }
        let out = Pipe()
        process.standardOutput = out
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        self.process = process
        let deadline = Date().addingTimeInterval(20)
        var buffer = Data()
        while Date() < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            let text = String(decoding: buffer, as: UTF8.self)
            if let range = text.range(of: #"serving on (tcp://[0-9.]+:[0-9]+)"#, options: .regularExpression) {
                address = String(text[range].dropFirst("serving on ".count))
                if let cluster = text.range(of: #"cluster (tcp://[0-9.]+:[0-9]+)"#, options: .regularExpression) {
                    clusterAddress = String(text[cluster].dropFirst("cluster ".count))
                }
                if let peer = text.range(of: #"peer (tcp://[0-9.]+:[0-9]+)"#, options: .regularExpression) {
                    peerAddress = String(text[peer].dropFirst("peer ".count))
                }
                if let http = text.range(of: #"http (http://[0-9.]+:[0-9]+)"#, options: .regularExpression) {
                    httpAddress = String(text[http].dropFirst("http ".count))
                }
                return
            }
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        process.terminate()
        throw NodeTestError("node did not report ready within 20 s; log:\n\(log)")
    }

    func kill(_ signal: Int32 = SIGKILL) {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
    }

    /// Sends `signal` without waiting for an exit (SIGSTOP, SIGCONT).
    func send(_ signal: Int32) {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Exit status after `kill(SIGTERM)`.
    var terminationStatus: Int32? { process.map { $0.isRunning ? nil : $0.terminationStatus } ?? nil }

    deinit {
        kill()
    }
}

struct NodeTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` on a thread of its own. Starting a node and running the CLI block (reading a
/// child's output, waiting for it to exit); on the cooperative pool (two threads on this machine)
/// that starved the in-process servers and clients of suites running at the same time, whose
/// requests then timed out.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// Runs the CLI to completion and returns its exit status and output.
func runCLI(_ arguments: [String], environment: [String: String] = [:]) async throws -> (
    status: Int32, stdout: String, stderr: String
) {
    try await offPool { try runCLIBlocking(arguments, environment: environment) }
}

private func runCLIBlocking(_ arguments: [String], environment: [String: String]) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: NodeProcess.binary)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// Sends one request to a node and decodes the response.
func call(_ client: RequestClient, _ request: Infranaut_V1_Request, timeout: Duration = .seconds(10)) async throws
    -> Infranaut_V1_Response
{
    try Infranaut_V1_Response(
        serializedBytes: try await client.request(try request.serializedBytes(), timeout: timeout))
}

/// A batch of double columns named `features` (f0 to f3 by default); column i holds
/// base + row × (i + 1).
func ingestRequest(
    model: String, key: String, rows: Int, base: Double = 0, features: [String] = (0..<4).map { "f\($0)" }
) -> Infranaut_V1_Request {
    .with {
        $0.version = 1
        $0.ingest = .with {
            $0.idempotencyKey = key
            $0.batch = .with {
                $0.modelID = model
                $0.rowCount = UInt32(rows)
                $0.columns = features.enumerated().map { f, name in
                    .with {
                        $0.name = name
                        $0.doubles = .with { $0.values = (0..<rows).map { base + Double($0 * (f + 1)) } }
                    }
                }
            }
        }
    }
}

func statusRequest(_ model: String) -> Infranaut_V1_Request {
    .with {
        $0.version = 1
        $0.status = .with { $0.modelID = model }
    }
}

/// Starts one node per id (the first forms the cluster, the others join through it, each with
/// `arguments` appended) and waits up to 15 s until every node sees all of them alive.
func startCluster(_ ids: [String], arguments: [String] = []) async throws -> [NodeProcess] {
    var nodes: [NodeProcess] = []
    for id in ids {
        let seed = nodes.first.map { ["--seed", $0.clusterAddress] } ?? []
        let node = NodeProcess(arguments: ["--node-id", id] + seed + arguments)
        try await node.start()
        nodes.append(node)
    }
    let formed = try await eventually(within: .seconds(15)) {
        for node in nodes
        where try await members(node).filter({ $0.state == .alive && !$0.clientAddress.isEmpty }).count != ids.count {
            return false
        }
        return true
    }
    guard formed != nil else { throw NodeTestError("the nodes \(ids) did not form a cluster within 15 s") }
    return nodes
}

/// Sends one batch (same key each time) until it is acknowledged, at most `attempts` times.
func ingestUntilAcked(_ client: RequestClient, model: String, key: String, rows: Int = 10, attempts: Int = 20) async
    -> Bool
{
    for _ in 0..<attempts {
        if let response = try? await call(
            client, ingestRequest(model: model, key: key, rows: rows), timeout: .seconds(5)),
            response.ingest.status.code == .ok
        {
            return true
        }
        try? await Task.sleep(for: .milliseconds(200))
    }
    return false
}
