import Cluster
import Drill
import Foundation
import Synchronization
import Wire

/// The node processes of one bench run, under a fresh temporary directory (data dirs `base/0`,
/// `base/1`, ...). ``stop()`` ends the processes and removes the directory.
struct BenchNodes {
    let base: String
    let nodes: [LaunchedNode]

    /// Starts `count` release nodes (the `infranaut` binary next to this one unless given) with
    /// `extra` flags and waits until they see each other.
    static func launch(binary: String?, nodes count: Int, prefix: String, extra: [String] = []) async throws
        -> BenchNodes
    {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent(
            "infranaut-\(prefix)-\(UUID().uuidString)"
        )
        .path
        do {
            let nodes = try await launchLocalCluster(
                binary: infranautBinary(binary), nodes: count, base: base, idPrefix: prefix,
                extra: ["--log-level", "warning"] + extra)
            return BenchNodes(base: base, nodes: nodes)
        } catch {
            try? FileManager.default.removeItem(atPath: base)
            throw error
        }
    }

    var pid: Int32 { nodes[0].process.processIdentifier }

    /// Data directory of node `index`.
    func dataDirectory(_ index: Int = 0) -> String { "\(base)/\(index)" }

    func stop() {
        for node in nodes {
            node.process.terminate()
            node.process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: base)
    }
}

/// Sends a serialized request and retries retryable refusals (a shard claiming its term, a leader
/// not yet known) with the same bytes, as a client does; anything else that is not OK throws.
/// - Parameters:
///   - what: Names the request in the error.
@discardableResult
func sendRetrying(
    _ request: [UInt8], through client: RequestClient, what: @autoclosure () -> String, attempts: Int = 200,
    pause: Duration = .milliseconds(20)
) async throws -> Infranaut_V1_Response {
    var response = Infranaut_V1_Response()
    for attempt in 0..<attempts {
        response = try Infranaut_V1_Response(serializedBytes: try await client.request(request, timeout: .seconds(30)))
        guard response.outcome.code != .ok, response.outcome.retryable, attempt < attempts - 1 else { break }
        try await Task.sleep(for: pause)
    }
    guard response.outcome.code == .ok else {
        throw DrillError("\(what()) failed: \(response.outcome.code.name): \(response.outcome.message)")
    }
    return response
}

/// ``sendRetrying(_:through:what:attempts:pause:)`` for a request body other than ingest.
@discardableResult
func sendRetrying(_ body: Infranaut_V1_Request.OneOf_Body, through client: RequestClient, what: String)
    async throws -> Infranaut_V1_Response
{
    let request: [UInt8] = try Infranaut_V1_Request.with {
        $0.version = 1
        $0.body = body
    }.serializedBytes()
    return try await sendRetrying(request, through: client, what: what)
}

/// Runs `work(i)` for every `i` in `0..<count`, `concurrency` at a time (each task takes every
/// `concurrency`-th index, in order).
func forEachConcurrently(
    _ count: Int, concurrency: Int, _ work: @escaping @Sendable (_ index: Int, _ task: Int) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for task in 0..<min(concurrency, count) {
            group.addTask {
                for index in stride(from: task, to: count, by: concurrency) { try await work(index, task) }
            }
        }
        try await group.waitForAll()
    }
}

func residentMegabytes(pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return .nan }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}

/// Apparent sizes of the files below `path` in MB: all of them, RocksDB's table files (`*.sst`)
/// and its write-ahead logs (`*.log`).
func directoryMegabytes(_ path: String) -> (total: Double, tables: Double, logs: Double) {
    var total = 0
    var tables = 0
    var logs = 0
    let enumerator = FileManager.default.enumerator(
        at: URL(fileURLWithPath: path), includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey])
    while let url = enumerator?.nextObject() as? URL {
        guard let values = try? url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey]),
            values.isRegularFile == true, let size = values.fileSize
        else { continue }
        total += size
        if url.pathExtension == "sst" { tables += size }
        if url.pathExtension == "log" { logs += size }
    }
    return (Double(total) / 1e6, Double(tables) / 1e6, Double(logs) / 1e6)
}

/// Request latencies collected by concurrent senders.
final class Recorder: Sendable {
    private let values = Mutex<[Duration]>([])
    func record(_ d: Duration) { values.withLock { $0.append(d) } }
    var latencies: [Duration] { values.withLock { $0 } }
}

/// Percentiles of a set of latencies, in milliseconds (NaN when there are none).
struct LatencySummary {
    private let sorted: [Duration]

    init(_ latencies: [Duration]) { sorted = latencies.sorted() }

    func milliseconds(at p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let d = sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        return Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000
    }
}

/// A value shared by concurrent tasks (a `Mutex` that escaping closures can capture).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout sending Value) -> sending R) -> sending R { mutex.withLock(body) }
}
