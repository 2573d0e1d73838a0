public import Cluster
public import Foundation
public import Wire

/// A drill or bench problem, said in one line.
public struct DrillError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A running `infranaut start` process and the addresses it reported in its ready line.
public struct LaunchedNode: Sendable {
    public var process: Process
    public var client: String
    public var cluster: String
    public var peer: String
}

/// Writes a new cluster secret to `path` (mode 0600) unless the file exists; returns `path`.
@discardableResult
public func writeClusterSecret(to path: String) throws -> String {
    try ClusterSecret.createFile(at: path)
    return path
}

/// The `infranaut` binary next to the running executable's, unless a path is given.
public func infranautBinary(_ path: String?) -> String {
    if let path { return path }
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("infranaut").path
}

/// Starts a node (free ports unless given) and waits for its ready line. Its log (stderr) goes to
/// `logPath` when given, else to this process's stderr.
public func launchNode(
    binary: String, dataDirectory: String, client: String = "tcp://127.0.0.1:0",
    cluster: String = "tcp://127.0.0.1:0", peer: String = "tcp://127.0.0.1:0", secretFile: String, extra: [String] = [],
    logPath: String? = nil
) throws -> LaunchedNode {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments =
        [
            "start", "--data-dir", dataDirectory, "--client-listen", client, "--cluster-listen", cluster,
            "--peer-listen", peer, "--cluster-secret-file", secretFile,
        ] + (extra.contains("--http-listen") ? [] : ["--http-listen", "127.0.0.1:0"]) + extra
    let out = Pipe()
    process.standardOutput = out
    if let logPath {
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        if let log = FileHandle(forWritingAtPath: logPath) {
            log.seekToEndOfFile()
            process.standardError = log
        }
    }
    do {
        try process.run()
    } catch {
        throw DrillError("cannot run \(binary): \(error)")
    }
    var text = ""
    while !text.contains("\n") {
        let chunk = out.fileHandleForReading.availableData
        guard !chunk.isEmpty else {
            throw DrillError(
                "the node at \(dataDirectory) exited before it was ready\(logPath.map { " (log: \($0))" } ?? "")")
        }
        text += String(decoding: chunk, as: UTF8.self)
    }
    // Ready line: "infranaut node ID serving on CLIENT (cluster CLUSTER, peer PEER, ...)".
    let addresses = text.matches(of: /tcp:\/\/[0-9.]+:[0-9]+/).map { String($0.output) }
    guard addresses.count >= 3 else { throw DrillError("no addresses in the node's ready line: \(text)") }
    return LaunchedNode(process: process, client: addresses[0], cluster: addresses[1], peer: addresses[2])
}

/// Starts `count` nodes under `base` (data dirs `base/0`, `base/1`, ..., logs beside them, one
/// shared cluster secret), the first forming the cluster and the others joining through it, and
/// waits until every node sees all of them alive. On failure the nodes already started are stopped.
public func launchLocalCluster(
    binary: String, nodes count: Int, base: String, idPrefix: String, extra: [String] = []
) async throws -> [LaunchedNode] {
    try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    let secret = try writeClusterSecret(to: "\(base)/cluster-secret")
    var launched: [LaunchedNode] = []
    do {
        for index in 0..<max(1, count) {
            let seed = launched.first.map { ["--seed", $0.cluster] } ?? []
            launched.append(
                try launchNode(
                    binary: binary, dataDirectory: "\(base)/\(index)", secretFile: secret,
                    extra: ["--node-id", "\(idPrefix)-\(index)"] + seed + extra, logPath: "\(base)/\(index).log"))
        }
        if launched.count > 1 {
            try await waitUntil(timeout: .seconds(30), "every node sees the others") {
                try await allSeeAlive(launched.map(\.client))
            }
        }
        return launched
    } catch {
        for node in launched {
            node.process.terminate()
            node.process.waitUntilExit()
        }
        throw error
    }
}

/// Sends one request to the node whose client endpoint is `address` and decodes the answer.
public func ask(_ address: String, _ body: Infranaut_V1_Request.OneOf_Body, timeout: Duration = .seconds(5))
    async throws -> Infranaut_V1_Response
{
    let client = try RequestClient(dial: address)
    defer { client.close() }
    let request = Infranaut_V1_Request.with {
        $0.version = 1
        $0.body = body
    }
    return try Infranaut_V1_Response(
        serializedBytes: try await client.request(try request.serializedBytes(), timeout: timeout))
}

/// Sends one request to the peer listener at `address`, sealed with `secret` as an admin sender,
/// and opens the sealed answer. A refusal (the secret does not match) comes back as the node's
/// unsealed PERMISSION_DENIED.
public func askPeer(
    _ address: String, _ body: Infranaut_V1_Request.OneOf_Body, secret: ClusterSecret, timeout: Duration = .seconds(5)
) async throws -> Infranaut_V1_Response {
    let client = try RequestClient(dial: address)
    defer { client.close() }
    let seal = PeerSeal(secret: secret, sender: "admin-\(UInt64.random(in: 1...UInt64.max))")
    let request = Infranaut_V1_Request.with {
        $0.version = 1
        $0.body = body
    }
    switch try await client.sealedRequest(try request.serializedBytes(), seal: seal, timeout: timeout) {
    case .sealed(let reply, _), .unsealed(let reply): return try Infranaut_V1_Response(serializedBytes: reply)
    }
}

/// The `members` view of the node whose client endpoint is `address`.
public func members(asking address: String) async throws -> [Infranaut_V1_MemberInfo] {
    try await ask(address, .members(.init())).members.members
}

/// Whether every node (by client address) sees all of them alive with their client addresses.
public func allSeeAlive(_ addresses: [String]) async throws -> Bool {
    for address in addresses {
        let view = try await members(asking: address)
        guard
            view.filter({ $0.state == .alive && !$0.clientAddress.isEmpty && !$0.peerAddress.isEmpty }).count
                == addresses.count
        else { return false }
    }
    return true
}

/// Polls `condition` every 50 ms (a throwing poll counts as "not yet") until it holds. On timeout
/// the error says why the last poll failed, when it threw.
public func waitUntil(timeout: Duration, _ what: String = "condition", _ condition: () async throws -> Bool)
    async throws
{
    let start = ContinuousClock.now
    var lastFailure: (any Error)?
    while ContinuousClock.now - start < timeout {
        do {
            if try await condition() { return }
            lastFailure = nil
        } catch {
            lastFailure = error
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw DrillError("\(what) not met within \(timeout)" + (lastFailure.map { "; the last check failed: \($0)" } ?? ""))
}
