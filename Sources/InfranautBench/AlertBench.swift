import ArgumentParser
import Cluster
import Drill
import Foundation
import Monitoring
import Receiver
import Wire

/// Time from a window's close to its notification reaching a real HTTP receiver, on a local
/// cluster: each round closes one hour whose drift flips the alert (firing, then resolved), so
/// each close owes one notice. Then the sending coordinator is killed with SIGKILL and the rounds
/// go on.
struct AlertBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alert-latency",
        abstract: "Time from window close to the webhook notice at the receiver, and after the sender's SIGKILL.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Rounds (window closes) before the kill.")
    var rounds = 20

    @Option(help: "Rounds after the sending coordinator is killed.")
    var after = 5

    static let hour: Int64 = 3_600_000

    func run() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        let cluster = try await BenchNodes.launch(binary: binary, nodes: 3, prefix: "alert")
        defer { cluster.stop() }
        let clients = try cluster.nodes.map { try RequestClient(dial: $0.client) }
        defer { for client in clients { client.close() } }
        let model = "alert-bench"
        try await sendRetrying(
            .applyChannel(
                .with {
                    $0.channel = .with {
                        $0.name = "bench-hook"
                        $0.type = .webhook
                        $0.url = receiver.url
                    }
                }), through: clients[0], what: "apply channel")
        try await sendRetrying(
            .applyModel(
                .with {
                    $0.spec = .with {
                        $0.name = model
                        $0.features = ["f0", "f1", "f2"].map { name in
                            .with {
                                $0.name = name
                                $0.type = .numeric
                            }
                        }
                        $0.window = .with { $0.sizeMs = UInt64(Self.hour) }
                        $0.reference = .with { $0.policy = .upload }
                        $0.alerts = [
                            .with {
                                $0.name = "drift"
                                $0.metric = "drift_share"
                                $0.condition = .above(0.5)
                                $0.notify = ["bench-hook"]
                            }
                        ]
                    }
                }), through: clients[0], what: "apply model")
        // Which coordinator sends: the one whose `channels` says so, once every node knows the
        // channel.
        var sender: Int?
        while sender == nil {
            for (index, client) in clients.enumerated() {
                let reply = try await sendRetrying(.channels(.init()), through: client, what: "channels").channels
                if reply.sending && !reply.channels.isEmpty { sender = index }
            }
            if sender == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let pusher = clients[(sender! + 1) % clients.count]
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / Self.hour - Int64(rounds + after) - 3) * Self.hour
        var random = SplitMix64(seed: 11)
        try await sendRetrying(
            Self.batch(model, key: "ref", rows: 2_000, start: t0 - Self.hour, shift: 0, reference: true, &random),
            through: pusher, what: "reference")

        var expected = 0
        var unflipped: [Int] = []
        /// The alert's number of changes so far, as its shard lists it.
        func changes() async throws -> UInt64 {
            let reply = try await sendRetrying(
                .alerts(
                    .with {
                        $0.modelID = model
                        $0.includeResolved = true
                    }), through: pusher, what: "alerts")
            return reply.alerts.alerts.map(\.sequence).max() ?? 0
        }
        /// One round: hour `h`'s rows (two features shifted when h is even), then the timed first
        /// row of the next hour; the time until the receiver accepts the notice it owes. Nil when
        /// the window's verdict did not flip (a chance drift or a missed one): no notice is owed.
        func round(_ h: Int) async throws -> Double? {
            let start = t0 + Int64(h) * Self.hour
            try await sendRetrying(
                Self.batch(
                    model, key: "h\(h)", rows: 2_000, start: start + 1, shift: h % 2 == 0 ? 3 : 0, reference: false,
                    &random),
                through: pusher, what: "hour \(h)")
            let before = try await changes()
            let began = ContinuousClock.now
            try await sendRetrying(
                Self.batch(model, key: "c\(h)", rows: 1, start: start + Self.hour, shift: 0, reference: false, &random),
                through: pusher, what: "close of hour \(h)")
            guard try await changes() > before else {
                unflipped.append(h)
                return nil
            }
            expected += 1
            while receiver.accepted.count < expected {
                guard ContinuousClock.now - began < .seconds(120) else {
                    throw ValidationError("no notice for hour \(h) within 120 s, though its alert changed")
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            let arrived = receiver.accepted[expected - 1].arrived
            return Double((arrived - began).components.attoseconds) / 1e15 + Double(
                (arrived - began).components.seconds) * 1e3
        }

        var before: [Double] = []
        for h in 0..<rounds { if let ms = try await round(h) { before.append(ms) } }
        kill(cluster.nodes[sender!].process.processIdentifier, SIGKILL)
        let killed = ContinuousClock.now
        let noticesBeforeKill = expected
        var afterKill: [Double] = []
        for h in rounds..<(rounds + after) { if let ms = try await round(h) { afterKill.append(ms) } }
        func median(_ values: [Double]) -> Double { values.isEmpty ? .nan : values.sorted()[values.count / 2] }
        if receiver.accepted.count > noticesBeforeKill {
            let first = receiver.accepted[noticesBeforeKill].arrived - killed
            print(
                String(
                    format:
                        "first notice after the kill arrived %.2f s after it (the next hour's rows pushed meanwhile)",
                    Double(first.components.seconds) + Double(first.components.attoseconds) / 1e18))
        }
        print(
            String(
                format: "%d window closes, sender alive: median %.1f ms, min %.1f ms, max %.1f ms", before.count,
                median(before), before.min() ?? 0, before.max() ?? 0))
        print(
            "after SIGKILL of the sending coordinator: "
                + afterKill.map { String(format: "%.1f ms", $0) }.joined(separator: ", ")
                + String(format: " (median %.1f ms)", median(afterKill)))
        let duplicates = Dictionary(grouping: receiver.accepted, by: { $0.headers["idempotency-key"] ?? "" })
            .filter { $0.value.count > 1 }.count
        print(
            "notices accepted: \(receiver.accepted.count) for \(expected) owed; repeated dedup keys: \(duplicates); hours whose verdict did not flip: \(unflipped)"
        )
    }

    static func batch(
        _ model: String, key: String, rows: Int, start: Int64, shift: Double, reference: Bool,
        _ random: inout SplitMix64
    ) throws -> [UInt8] {
        func normal() -> Double {
            let u = Double(random.next() >> 11) * 0x1p-53 + 1e-12
            let v = Double(random.next() >> 11) * 0x1p-53
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let columns = ["f0", "f1", "f2"].map { name in
            // Drifted hours shift two features of three, so a chance drift of one clean feature
            // does not keep the alert firing (the rule fires above a share of 0.5).
            let values = (0..<rows).map { _ in normal() + (name == "f2" ? 0 : shift) }
            return Infranaut_V1_Column.with {
                $0.name = name
                $0.doubles = .with { $0.values = values }
            }
        }
        let batch = Infranaut_V1_TelemetryBatch.with {
            $0.modelID = model
            $0.rowCount = UInt32(rows)
            $0.reference = reference
            $0.eventTimeUnixMs = (0..<rows).map { start + Int64($0) * 1_000 }  // 2,000 rows: 33 minutes
            $0.columns = columns
        }
        return Infranaut_V1_Request.encodedIngest(key: key, batchBytes: try batch.serializedBytes())
    }
}
