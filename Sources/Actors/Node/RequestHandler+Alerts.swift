import Cluster
import Foundation
import Specs
import SwiftProtobuf
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

    /// The alerts of the shards this node leads, each read after a read-index round (so a leader
    /// that has not yet applied what an older one acknowledged, or that was deposed, does not
    /// answer from old state), and those shards' numbers; a shard whose round fails is left out
    /// and counts as leaderless in the listing.
    private func ledAlerts(_ request: Infranaut_V1_AlertsRequest) async -> ([Infranaut_V1_AlertInfo], Set<UInt32>) {
        var found: [Infranaut_V1_AlertInfo] = []
        var led: Set<UInt32> = []
        var leading: [(UInt32, ShardActor)] = []
        for (number, shard) in router.shards.enumerated() where await shard.leadership == .here {
            leading.append((UInt32(number), shard))
        }
        await withTaskGroup(of: (UInt32, [Infranaut_V1_AlertInfo])?.self) { group in
            for (number, shard) in leading {
                group.addTask {
                    guard case .done(true) = await shard.readIndex() else { return nil }
                    return (number, await shard.allAlerts(request))
                }
            }
            for await part in group {
                guard let (number, alerts) = part else { continue }
                found += alerts
                led.insert(number)
            }
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
        let status = await publishToCoordinators(
            id: "channel/\(channel.name)/\(channel.appliedUnixMs)/\(membership.nodeID)",
            kind: NotificationLedger.channelKind, payload: channel, deadline: deadline)
        return .with { $0.applyChannel = .with { $0.status = status } }
    }

    /// Publishes a cluster-wide fact (a channel, a silence) to every coordinator; OK once it is
    /// durable here, from where the relay delivers it.
    private func publishToCoordinators(
        id: String, kind: String, payload: some SwiftProtobuf.Message, deadline: RequestDeadline
    ) async -> Infranaut_V1_Status {
        let event: Infranaut_V1_ClusterEvent
        do {
            event = try .with {
                $0.id = id
                $0.kind = kind
                $0.payload = try payload.serializedData()
            }
        } catch {
            return Infranaut_V1_Status(code: .internal, message: "the \(kind) could not be encoded: \(error)")
        }
        let events = self.events
        let published =
            await withDeadline(deadline.remaining) { await events.publish(event) }
            ?? .with {
                $0.status = Infranaut_V1_Status(
                    code: .deadlineExceeded,
                    message: "the \(kind) was not made durable within its deadline; send it again")
            }
        return published.status
    }

    /// Creates a silence from now for `for_ms`, or ends one now, and publishes it to every
    /// coordinator (docs/alerting.md, "Silences").
    func serveSilence(_ request: Infranaut_V1_SilenceRequest, deadline: RequestDeadline) async -> Infranaut_V1_Response
    {
        func refused(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_Response {
            .with { $0.silence = .with { $0.status = Infranaut_V1_Status(code: code, message: message) } }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var silence: Infranaut_V1_Silence
        if !request.expireID.isEmpty {
            guard membership.isCoordinator else {
                return refused(.invalidArgument, "node \(membership.nodeID) is not a coordinator; ask one")
            }
            guard let known = await notifier.silence(request.expireID) else {
                return refused(
                    .notFound, "no silence \(request.expireID) on this coordinator (infranaut silences lists them)")
            }
            silence = known
            silence.endsUnixMs = min(silence.endsUnixMs, now)
        } else {
            if let problem = Self.silenceProblem(request, maxNameBytes: settings.limits.maxNameBytes) {
                return refused(.invalidArgument, problem)
            }
            silence = request.silence
            let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            silence.id = String(repeating: "0", count: 16 - id.count) + id
            silence.startsUnixMs = now
            silence.endsUnixMs = now + Int64(request.forMs)
            silence.createdBy = membership.nodeID
        }
        silence.updatedUnixMs = now
        let status = await publishToCoordinators(
            id: "silence/\(silence.id)/\(now)", kind: NotificationLedger.silenceKind, payload: silence,
            deadline: deadline)
        return .with {
            $0.silence = .with {
                $0.status = status
                $0.silence = silence
            }
        }
    }

    static let maxSilence: UInt64 = 90 * 86_400_000

    static func silenceProblem(_ request: Infranaut_V1_SilenceRequest, maxNameBytes: Int) -> String? {
        let s = request.silence
        if s.modelID.isEmpty || s.modelID.utf8.count > maxNameBytes {
            return "silence.model_id must be 1 to \(maxNameBytes) bytes"
        }
        if !s.rule.isEmpty && !ModelSpecRules.isRuleName(s.rule) { return "silence.rule is not a rule name" }
        if s.matchers.count > 16 { return "at most 16 matchers" }
        for (key, value) in s.matchers where key.isEmpty || key.utf8.count > 63 || value.utf8.count > 256 {
            return "a matcher's label is 1 to 63 bytes and its value at most 256"
        }
        if !(60_000...maxSilence).contains(request.forMs) { return "a silence lasts 1m to 90d" }
        if s.comment.isEmpty || s.comment.utf8.count > 1_024 {
            return "a silence needs a comment of at most 1024 bytes"
        }
        return nil
    }
}
