import Cluster
import Foundation
import Specs
import Wire

/// `alerts` (docs/alerting.md): one model's alerts from its shard's leader, or every model's,
/// gathered from the leaders of all shards like `get models`.
extension RequestHandler {
    func serveAlerts(
        _ alerts: Infranaut_V1_AlertsRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        if !alerts.modelID.isEmpty {
            let problem =
                alerts.modelID.utf8.count > settings.limits.maxNameBytes
                ? "alerts.model_id is over \(settings.limits.maxNameBytes) bytes" : nil
            return await modelRead(
                model: alerts.modelID, problem: problem, request: request, bytes: bytes, deadline: deadline,
                wrap: { reply in .with { $0.alerts = reply } },
                status: { status in .with { $0.status = status } }
            ) { shard in await shard.alerts(of: alerts) }
        }
        if alerts.local {
            let (found, led) = await ledAlerts(alerts)
            return .with {
                $0.alerts = .with {
                    $0.status = .ok
                    $0.alerts = found
                    $0.ledShards = led.sorted()
                }
            }
        }
        var asked = request
        asked.alerts.local = true
        guard
            let gathered = await gatherFromLeaders(
                asking: asked, deadline: deadline, what: "alert lists", local: { await self.ledAlerts(alerts) },
                part: { reply in
                    guard case .alerts(let found) = reply.body, found.status.code == .ok else { return nil }
                    return (found.alerts, found.ledShards)
                })
        else {
            return .with { $0.error = busyGathering("alert lists") }
        }
        // An alert is listed once even when two nodes both thought they led its shard a moment ago.
        var seen: Set<String> = []
        let unique = gathered.items.sorted { ($0.modelID, $0.fingerprint) < ($1.modelID, $1.fingerprint) }
            .filter { seen.insert("\($0.modelID)\u{0}\($0.fingerprint)\u{0}\($0.sequence)").inserted }
        return .with {
            $0.alerts = .with {
                $0.status = .ok
                $0.alerts = unique
                $0.unreachable = gathered.unreachable
                $0.leaderlessShards = gathered.leaderless
            }
        }
    }

    /// The alerts of the shards this node leads, and those shards' numbers.
    private func ledAlerts(_ request: Infranaut_V1_AlertsRequest) async -> ([Infranaut_V1_AlertInfo], Set<UInt32>) {
        var found: [Infranaut_V1_AlertInfo] = []
        var led: Set<UInt32> = []
        for (number, shard) in router.shards.enumerated() where await shard.leadership == .here {
            found += await shard.allAlerts(request)
            led.insert(UInt32(number))
        }
        return (found, led)
    }
}

extension RequestHandler {
    /// Checks a channel and publishes it to every coordinator (each keeps the newest apply of a
    /// name). Answered once the event is durable here: the relay delivers it from there.
    func serveApplyChannel(_ apply: Infranaut_V1_ApplyChannelRequest, deadline: RequestDeadline) async
        -> Infranaut_V1_Response
    {
        var channel = apply.channel
        let problems = ChannelRules.problems(of: channel)
        guard problems.isEmpty else {
            return .with {
                $0.applyChannel = .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message: problems.map { "\($0.path): \($0.message)" }.joined(separator: "; "))
                    $0.problems = problems.map { problem in
                        .with {
                            $0.path = problem.path
                            $0.message = problem.message
                        }
                    }
                }
            }
        }
        channel.appliedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        let event: Infranaut_V1_ClusterEvent
        do {
            event = try .with {
                $0.id = "channel/\(channel.name)/\(channel.appliedUnixMs)/\(membership.nodeID)"
                $0.kind = NotificationLedger.channelKind
                $0.payload = try channel.serializedData()
            }
        } catch {
            return .with {
                $0.applyChannel = .with { $0.status = Infranaut_V1_Status(code: .internal, message: "\(error)") }
            }
        }
        let events = self.events
        let published =
            await withDeadline(deadline.remaining) { await events.publish(event) }
            ?? .with {
                $0.status = Infranaut_V1_Status(
                    code: .deadlineExceeded,
                    message: "the channel was not made durable within its deadline; apply it again")
            }
        return .with { $0.applyChannel = .with { $0.status = published.status } }
    }
}
