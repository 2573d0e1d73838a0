import ArgumentParser
import Foundation

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
