import ArgumentParser
import Foundation
import Wire

struct PublishEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish-event",
        abstract: "Publish an event for every coordinator (delivered with acknowledgement, retry and dedupe by id).",
        discussion: """
            The node answers once the event is durable on it; it then delivers the event to every live
            coordinator, retrying until each acknowledged it (a coordinator that is down is waited for
            up to 5 minutes). Publishing the same id again is a duplicate and changes nothing.
            """
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Event id (1 to 128 bytes, unique).")
    var id: String

    @Option(help: "Event kind, for example alert.")
    var kind = "note"

    @Option(help: "Payload text (at most 64 KiB).")
    var data = ""

    @Option(
        name: .customLong("cluster-secret-file"),
        help:
            "File holding the cluster secret (events reach every coordinator, so publishing needs it). Default: $INFRANAUT_CLUSTER_SECRET."
    )
    var clusterSecretFile: String?

    @Flag(help: "Print as JSON.")
    var json = false

    func run() async throws {
        let response = try await askWithSecret(
            node: node, secretFile: clusterSecretFile,
            .publishEvent(
                .with {
                    $0.event = .with {
                        $0.id = id
                        $0.kind = kind
                        $0.payload = Data(data.utf8)
                    }
                }), what: "publish-event", timeout: .seconds(40))
        guard case .publishEvent(let reply) = response.body, reply.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        if json {
            struct Output: Encodable {
                var id: String
                var duplicate: Bool
            }
            try printJSON(Output(id: id, duplicate: reply.duplicate))
        } else {
            print(
                reply.duplicate
                    ? "event \(id) was already published through \(node)"
                    : "event \(id) published; \(node) delivers it to every coordinator")
        }
    }
}

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List the events a coordinator received, and what the node still has to deliver."
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Show at most this many (newest).")
    var limit = 100

    @Flag(help: "Print as JSON.")
    var json = false

    struct Event: Encodable {
        var id: String
        var kind: String
        var payload: String
        var source_node: String
        var created_unix_ms: Int64
        var received_unix_ms: Int64
    }

    struct Output: Encodable {
        var node: String
        var received_total: UInt64
        var pending_outbound: UInt32
        var events: [Event]
    }

    func validate() throws {
        guard limit > 0 && limit <= 10_000 else { throw ValidationError("--limit must be between 1 and 10000") }
    }

    func run() async throws {
        let client = try NodeClient(address: node, timeout: .seconds(10))
        defer { client.close() }
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.events = .with { $0.limit = UInt32(limit) }
            })
        guard case .events(let reply) = response.body, reply.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        let output = Output(
            node: node, received_total: reply.receivedTotal, pending_outbound: reply.pendingOutbound,
            events: reply.events.map {
                Event(
                    id: $0.event.id, kind: $0.event.kind, payload: String(decoding: $0.event.payload, as: UTF8.self),
                    source_node: $0.event.sourceNode, created_unix_ms: $0.event.createdUnixMs,
                    received_unix_ms: $0.receivedUnixMs)
            })
        if json {
            try printJSON(output)
            return
        }
        print(
            "\(node): \(reply.receivedTotal) event(s) received, \(reply.pendingOutbound) published here still being delivered"
        )
        var rows = [["id", "kind", "from", "payload"]]
        for event in output.events {
            rows.append([event.id, event.kind, event.source_node, String(event.payload.prefix(60))])
        }
        printTable(rows)
    }
}
