import ArgumentParser
import Cluster
import Foundation
import Wire

struct FaultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault",
        abstract: "Cut or slow one node's traffic with chosen peers, for partition drills (needs the cluster secret).",
        discussion: """
            The node drops (--drop) or delays (--delay with --delay-ms) every node-to-node frame to and
            from the named node ids: gossip, forwarded requests, replication, snapshots, hand-off and
            event delivery, and their replies. Its client port is never affected. Both directions are
            cut on this node alone, so to cut n3 off from n1 and n2, ask n3 to drop n1,n2. The rules
            replace the node's rules in force and expire by themselves (--for, default 10m, at most
            1h); --clear removes them at once.

              infranaut fault --node tcp://127.0.0.1:7410 --drop n1,n2 --for 60s --cluster-secret-file F
              infranaut fault --node tcp://127.0.0.1:7410 --clear --cluster-secret-file F
            """
    )

    @Option(help: "Client address of the node that applies the rules.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Node ids (comma-separated) whose traffic with the node is dropped, both directions.")
    var drop: String?

    @Option(help: "Node ids (comma-separated) whose traffic with the node is delayed by --delay-ms, both directions.")
    var delay: String?

    @Option(name: .customLong("delay-ms"), help: "Delay of every frame to and from the --delay nodes (1-10000 ms).")
    var delayMs: Int?

    @Option(
        name: .customLong("for"),
        help: "How long the rules last: for example 90s, 10m, 1h, 500ms, or a number of seconds (default 10m).")
    var lifetime: String?

    @Flag(help: "Remove every rule the node has.")
    var clear = false

    @Option(
        name: .customLong("cluster-secret-file"),
        help:
            "File holding the cluster secret (fault rules cut a node off, so they need it). Default: $INFRANAUT_CLUSTER_SECRET."
    )
    var clusterSecretFile: String?

    @Flag(help: "Print as JSON.")
    var json = false

    struct Rule: Encodable {
        var node: String
        var drop: Bool
        var delay_ms: UInt32
    }

    struct Output: Encodable {
        var node: String
        var rules: [Rule]
        var expires_in_ms: UInt64
        var frames_dropped: UInt64
        var frames_delayed: UInt64
    }

    func validate() throws {
        if clear {
            guard drop == nil, delay == nil, delayMs == nil, lifetime == nil else {
                throw ValidationError(
                    "--clear removes every rule; give it without --drop, --delay, --delay-ms or --for")
            }
            return
        }
        guard drop != nil || delay != nil else {
            throw ValidationError(
                "name the nodes to cut (--drop n1,n2) or slow (--delay n1 --delay-ms 200), or --clear")
        }
        if (delay == nil) != (delayMs == nil) {
            throw ValidationError("--delay and --delay-ms go together: the nodes to delay, and by how much")
        }
        _ = try Self.ids(drop, flag: "--drop")
        _ = try Self.ids(delay, flag: "--delay")
        if let lifetime { _ = try Self.duration(lifetime) }
    }

    func request() throws -> Infranaut_V1_FaultRequest {
        guard !clear else { return .with { $0.clear = true } }
        let lifetime = try self.lifetime.map(Self.duration)
        return try .with {
            $0.drop = try Self.ids(drop, flag: "--drop")
            $0.delay = try Self.ids(delay, flag: "--delay")
            $0.delayMs = UInt32(clamping: delayMs ?? 0)
            $0.expireAfterMs = UInt32(clamping: lifetime?.milliseconds ?? 0)
        }
    }

    func run() async throws {
        let response = try await askWithSecret(
            node: node, secretFile: clusterSecretFile, .fault(try request()), what: "fault", timeout: .seconds(10))
        guard case .fault(let reply) = response.body, reply.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        let output = Output(
            node: node, rules: reply.rules.map { Rule(node: $0.node, drop: $0.drop, delay_ms: $0.delayMs) },
            expires_in_ms: reply.expiresInMs, frames_dropped: reply.framesDropped, frames_delayed: reply.framesDelayed)
        if json {
            try printJSON(output)
            return
        }
        let dropped = output.rules.filter(\.drop).map(\.node)
        let delayed = output.rules.filter { !$0.drop }.map { "\($0.node) by \($0.delay_ms) ms" }
        if output.rules.isEmpty {
            print("\(node): no fault rules in force")
        } else {
            var parts: [String] = []
            if !dropped.isEmpty { parts.append("drops its traffic with \(dropped.joined(separator: ", "))") }
            if !delayed.isEmpty { parts.append("delays its traffic with \(delayed.joined(separator: ", "))") }
            print("\(node) \(parts.joined(separator: " and ")) for \(Self.seconds(output.expires_in_ms))")
        }
        print("frames dropped so far: \(output.frames_dropped); delayed: \(output.frames_delayed)")
    }

    /// The ids of a comma-separated list (nil: none).
    static func ids(_ list: String?, flag: String) throws -> [String] {
        guard let list else { return [] }
        let ids = list.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard !ids.contains(where: \.isEmpty) else {
            throw ValidationError(
                "\(flag) \"\(list)\" has an empty node id; expected ids separated by commas, like n1,n2")
        }
        return ids
    }

    /// A duration like 90s, 10m, 1h, 500ms, or a number of seconds.
    static func duration(_ text: String) throws -> Duration {
        let units: [(suffix: String, milliseconds: Double)] = [
            ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000),
        ]
        let unit = units.first { text.hasSuffix($0.suffix) && Double(text.dropLast($0.suffix.count)) != nil }
        guard let number = Double(unit.map { String(text.dropLast($0.suffix.count)) } ?? text), number.isFinite,
            number > 0
        else {
            throw ValidationError("--for \(text) is not a positive duration; use for example 90s, 10m, 1h or 500ms")
        }
        let milliseconds = number * (unit?.milliseconds ?? 1_000)
        guard milliseconds <= 3_600_000 else {
            throw ValidationError("--for \(text) is longer than the 1h rules may last")
        }
        return .milliseconds(Int64(milliseconds.rounded()))
    }

    private static func seconds(_ milliseconds: UInt64) -> String {
        milliseconds >= 120_000
            ? "\(milliseconds / 60_000) min" : String(format: "%.1f s", Double(milliseconds) / 1_000)
    }
}
