import Cluster
import Drill
import Foundation
import Testing
import Wire

private func send(_ node: NodeProcess, _ body: Infranaut_V1_Request.OneOf_Body) async throws -> Infranaut_V1_Response {
    let client = try RequestClient(dial: node.address)
    defer { client.close() }
    return try await call(
        client,
        .with {
            $0.version = 1
            $0.body = body
        }, timeout: .seconds(5))
}

/// Node-to-node requests go to the peer listener, sealed with the cluster secret.
private func sendAsPeer(_ node: NodeProcess, _ body: Infranaut_V1_Request.OneOf_Body) async throws
    -> Infranaut_V1_Response
{
    try await askPeer(node.peerAddress, body, secret: try NodeProcess.secret)
}

private func publish(_ node: NodeProcess, _ id: String) async throws -> Infranaut_V1_PublishEventResponse {
    try await sendAsPeer(
        node,
        .publishEvent(
            .with {
                $0.event = .with {
                    $0.id = id
                    $0.kind = "alert"
                    $0.payload = Data("payload of \(id)".utf8)
                }
            })
    ).publishEvent
}

private func received(_ node: NodeProcess) async throws -> Infranaut_V1_EventsResponse {
    try await send(node, .events(.with { $0.limit = 10_000 })).events
}

@Suite("reliable dissemination to coordinators", .serialized, .timeLimit(.minutes(3)))
struct EventProcessTests {
    @Test("events reach every coordinator exactly once, including one killed mid-delivery and restarted")
    func survivesCoordinatorKill() async throws {
        let coordinators = try await startCluster(["c0", "c1"], arguments: ["--roles", "worker,coordinator"])
        let (c0, c1) = (coordinators[0], coordinators[1])
        let w = NodeProcess(arguments: ["--node-id", "w", "--roles", "worker", "--seed", c0.clusterAddress])
        try await w.start()
        let formed = try await eventually(within: .seconds(15)) {
            for node in [c0, c1, w]
            where try await members(node).filter({ $0.state == .alive && !$0.clientAddress.isEmpty }).count != 3 {
                return false
            }
            return true
        }
        try #require(formed != nil, "the worker did not join within 15 s")

        let ids = (0..<40).map { "event-\($0)" }
        for id in ids.prefix(20) { #expect(try await publish(w, id).status.code == .ok) }
        // Killed while the first events are being delivered; more are published while it is down.
        c1.kill(SIGKILL)
        for id in ids.suffix(20) { #expect(try await publish(w, id).status.code == .ok) }
        let beforeRestart = try await received(c0)
        #expect(beforeRestart.receivedTotal <= 40)

        let restarted = NodeProcess(
            dataDirectory: c1.dataDirectory, arguments: ["--roles", "worker,coordinator", "--seed", c0.clusterAddress])
        try await restarted.start()
        defer { restarted.kill() }
        let delivered = try await eventually(within: .seconds(40)) {
            let onC0 = try await received(c0)
            let onC1 = try await received(restarted)
            let pending = try await received(w).pendingOutbound
            return onC0.receivedTotal == 40 && onC1.receivedTotal == 40 && pending == 0
        }
        #expect(delivered != nil, "not every event reached both coordinators within 40 s of the restart")
        for node in [c0, restarted] {
            let events = try await received(node).events
            #expect(events.count == 40)
            #expect(Set(events.map(\.event.id)) == Set(ids), "each event once, none missing")
            #expect(
                events.allSatisfy {
                    $0.event.sourceNode == "w"
                        && String(decoding: $0.event.payload, as: UTF8.self) == "payload of \($0.event.id)"
                })
        }

        // Dedupe: publishing again, and delivering again directly, change nothing.
        let again = try await publish(w, "event-5")
        #expect(again.status.code == .ok)
        let redelivered = try await sendAsPeer(
            c0,
            .deliverEvent(
                .with {
                    $0.event = .with {
                        $0.id = "event-5"
                        $0.kind = "alert"
                    }
                    $0.fromNode = "w"
                })
        ).deliverEvent
        #expect(redelivered.status.code == .ok && redelivered.duplicate)
        // The second publish is relayed again once delivered the first time; the coordinators must
        // drop it. Read the totals only when nothing is on its way any more.
        let drained = try await eventually(within: .seconds(20)) { try await received(w).pendingOutbound == 0 }
        #expect(drained != nil, "the worker still has deliveries pending")
        #expect(try await received(c0).receivedTotal == 40)
        #expect(try await received(restarted).receivedTotal == 40)

        // A worker-only node is not a target and refuses deliveries.
        #expect(try await received(w).receivedTotal == 0)
        let refused = try await sendAsPeer(
            w,
            .deliverEvent(
                .with {
                    $0.event = .with {
                        $0.id = "x"
                        $0.kind = "alert"
                    }
                })
        ).deliverEvent
        #expect(refused.status.code == .invalidArgument)
    }

    @Test("publish-event checks the event: id, kind and payload size")
    func validation() async throws {
        let node = NodeProcess()
        try await node.start()
        defer { node.kill() }
        let noID = try await sendAsPeer(node, .publishEvent(.with { $0.event = .with { $0.kind = "alert" } }))
            .publishEvent
        #expect(noID.status.code == .invalidArgument && noID.status.message.contains("event.id"))
        let big = try await sendAsPeer(
            node,
            .publishEvent(
                .with {
                    $0.event = .with {
                        $0.id = "big"
                        $0.kind = "alert"
                        $0.payload = Data(count: 65 << 10)
                    }
                })
        ).publishEvent
        #expect(big.status.code == .tooLarge)
    }
}
