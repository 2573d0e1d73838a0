import Cluster
import Foundation
import Tabular
import Telemetry
import Wire

/// What a burst of clients saw: how many were acknowledged on their first try, and how long the
/// answers took (first try; a client whose first answer was a retryable refusal retries with the
/// same key until acknowledged or `retryBudget` runs out).
public struct BurstReport: Sendable, Encodable {
    public var clients: Int
    /// Clients whose warm-up request got no answer (for example beyond the node's connection limit).
    public var unconnected: Int
    public var acknowledgedFirstTry: Int
    public var acknowledgedAfterRetry: Int
    public var failed: Int
    /// First-try answer codes other than OK, by name.
    public var refusals: [String: Int]
    public var p50Ms: Double
    public var p99Ms: Double
    public var maxMs: Double
    /// Until the last client was acknowledged, retries included.
    public var allAcknowledgedMs: Double

    public var firstTryRatio: Double { clients == 0 ? 0 : Double(acknowledgedFirstTry) / Double(clients) }
}

/// `clients` separate connections to `address` (each with its own socket), each made ready with a
/// `members` round trip; then every client sends one `rows`-row ingest for `model` at the same
/// instant. Keys are `<keyPrefix>-<client>`.
public func runBurst(
    address: String, model: String, clients count: Int, rows: Int = 1, keyPrefix: String,
    timeout: Duration = .seconds(10), retryBudget: Duration = .seconds(30)
) async throws -> BurstReport {
    var settings = RequestClientSettings()
    settings.reconnectMax = .milliseconds(200)
    let clients = try (0..<count).map { _ in try RequestClient(dial: address, settings: settings) }
    defer { clients.forEach { $0.close() } }
    // Connect everyone first (in waves of 50, so that connecting is not itself the burst). A client
    // the node does not let in (beyond its connection limit) is counted and still takes part.
    let ping =
        try Infranaut_V1_Request.with {
            $0.version = 1
            $0.members = .init()
        }.serializedBytes() as [UInt8]
    var unconnected = 0
    for wave in stride(from: 0, to: count, by: 50) {
        unconnected += await withTaskGroup(of: Int.self) { group in
            for client in clients[wave..<min(count, wave + 50)] {
                group.addTask { (try? await client.request(ping, timeout: .seconds(10))) == nil ? 1 : 0 }
            }
            return await group.reduce(0, +)
        }
    }
    var builder = BatchBuilder(model: model)
    let requests = try (0..<count).map { index in
        for row in 0..<rows { builder.append([.number(Double(index + row))]) }
        let batch = try builder.take(columns: ["x"])
        return Infranaut_V1_Request.encodedIngest(key: "\(keyPrefix)-\(index)", batchBytes: try batch.serializedBytes())
    }
    struct Outcome: Sendable {
        var firstCode: Infranaut_V1_StatusCode
        var firstLatency: Duration
        var acknowledged: Bool
        var done: Duration
    }
    let start = ContinuousClock.now
    let outcomes = await withTaskGroup(of: Outcome.self) { group in
        for (client, request) in zip(clients, requests) {
            group.addTask {
                var first: (Infranaut_V1_StatusCode, Duration)?
                var delay: Duration = .milliseconds(50)
                while true {
                    let code: Infranaut_V1_StatusCode
                    var hint: Duration = .zero
                    do {
                        let reply = try Infranaut_V1_Response(
                            serializedBytes: try await client.request(request, timeout: timeout))
                        code = reply.outcome.code
                        hint = .milliseconds(Int(reply.outcome.retryAfterMs))
                    } catch {
                        code = .unavailable
                    }
                    let now = ContinuousClock.now - start
                    if first == nil { first = (code, now) }
                    if code == .ok || !code.isRetryable || now > retryBudget {
                        return Outcome(
                            firstCode: first!.0, firstLatency: first!.1, acknowledged: code == .ok, done: now)
                    }
                    try? await Task.sleep(for: max(delay, hint))
                    delay = min(delay * 2, .seconds(1))
                }
            }
        }
        var all: [Outcome] = []
        for await outcome in group { all.append(outcome) }
        return all
    }
    func ms(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
    let latencies = outcomes.map { ms($0.firstLatency) }.sorted()
    func percentile(_ p: Double) -> Double {
        latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
    }
    var refusals: [String: Int] = [:]
    for outcome in outcomes where outcome.firstCode != .ok { refusals[outcome.firstCode.name, default: 0] += 1 }
    let firstTry = outcomes.filter { $0.firstCode == .ok }.count
    let acknowledged = outcomes.filter(\.acknowledged).count
    return BurstReport(
        clients: count, unconnected: unconnected, acknowledgedFirstTry: firstTry,
        acknowledgedAfterRetry: acknowledged - firstTry, failed: count - acknowledged,
        refusals: refusals, p50Ms: percentile(0.5), p99Ms: percentile(0.99), maxMs: latencies.last ?? 0,
        allAcknowledgedMs: outcomes.filter(\.acknowledged).map { ms($0.done) }.max() ?? 0)
}

/// The client addresses of the leader of `model`'s shard, one other voter of its group, and one
/// node that holds no replica of it (when the cluster has one), once the group has settled: every
/// replica the placement wants is a voter and the placement's first replica leads. Waits up to
/// `patience` for that (a new cluster moves replicas and leaders for a few seconds).
public func replicaRoles(of model: String, asking address: String, patience: Duration = .seconds(60)) async throws
    -> (primary: String, follower: String?, other: String?)
{
    let deadline = ContinuousClock.now + patience
    var last = "no answer yet"
    while ContinuousClock.now < deadline {
        let ring = try await ask(address, .ring(.with { $0.modelID = model })).ring
        let view = try await members(asking: address)
        guard Int(ring.modelShard) < ring.shards.count else { throw DrillError("no placement for \(model)") }
        let replicas = ring.shards[Int(ring.modelShard)].replicas
        let byID = Dictionary(view.map { ($0.id, $0.clientAddress) }, uniquingKeysWith: { $1 })
        if let leaderID = replicas.first, let leaderAddress = byID[leaderID] {
            let group = try await ask(leaderAddress, .ring(.init())).ring.shards[Int(ring.modelShard)]
            if group.leader == leaderID && Set(group.voters) == Set(replicas) {
                let follower = replicas.dropFirst().first.flatMap { byID[$0] }
                let other = view.first { !replicas.contains($0.id) }?.clientAddress
                return (leaderAddress, follower, other)
            }
            last =
                "leader \(group.leader.isEmpty ? "unknown" : group.leader), voters \(group.voters), wanted \(replicas)"
        }
        try await Task.sleep(for: .milliseconds(100))
    }
    throw DrillError("\(model)'s shard did not settle within \(patience): \(last)")
}
