import ArgumentParser
import Cluster
import Foundation
import Wire

/// A running `infranaut start` process and the addresses it reported in its ready line.
struct LaunchedNode {
    var process: Process
    var client: String
    var cluster: String
}

/// The `infranaut` binary next to this benchmark's own, unless a path is given.
func infranautBinary(_ path: String?) -> String {
    path ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("infranaut").path
}

/// Starts a node (free ports unless given) and waits for its ready line.
func launchNode(
    binary: String, dataDirectory: String, client: String = "tcp://127.0.0.1:0",
    cluster: String = "tcp://127.0.0.1:0", extra: [String] = []
) throws -> LaunchedNode {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = ["start", "--data-dir", dataDirectory, "--client-listen", client, "--cluster-listen", cluster] + extra
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    var text = ""
    while !text.contains("\n") {
        let chunk = out.fileHandleForReading.availableData
        guard !chunk.isEmpty else { throw ValidationError("the node at \(dataDirectory) exited before it was ready") }
        text += String(decoding: chunk, as: UTF8.self)
    }
    // Ready line: "infranaut node ID serving on CLIENT (cluster CLUSTER, ...)".
    let addresses = text.matches(of: /tcp:\/\/[0-9.]+:[0-9]+/).map { String($0.output) }
    guard addresses.count >= 2 else { throw ValidationError("no addresses in the node's ready line: \(text)") }
    return LaunchedNode(process: process, client: addresses[0], cluster: addresses[1])
}

/// The `members` view of the node whose client endpoint is `address`.
func members(asking address: String) async throws -> [Infranaut_V1_MemberInfo] {
    let client = try RequestClient(dial: address)
    defer { client.close() }
    let request = Infranaut_V1_Request.with {
        $0.version = 1
        $0.members = .init()
    }
    let reply = try await client.request(try request.serializedBytes(), timeout: .seconds(5))
    return try Infranaut_V1_Response(serializedBytes: reply).members.members
}

/// Whether every node (by client address) sees all of them alive with their client addresses.
func allSeeAlive(_ addresses: [String]) async throws -> Bool {
    for address in addresses {
        let view = try await members(asking: address)
        guard view.filter({ $0.status == "alive" && !$0.clientAddress.isEmpty }).count == addresses.count else { return false }
    }
    return true
}

/// Polls `condition` every 50 ms (a throwing poll counts as "not yet") until it holds.
func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let start = ContinuousClock.now
    while ContinuousClock.now - start < timeout {
        if (try? await condition()) == true { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw ValidationError("condition not met within \(timeout)")
}
