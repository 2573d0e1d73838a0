import AsyncHTTPClient
import Cluster
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import Wire

/// A coordinator's notifications (docs/alerting.md, "Notifications"): it learns alert changes,
/// channels and other coordinators' sends from the events it receives, and while it is the lowest
/// live coordinator by id it sends what is owed, one notice per model window and channel, with
/// retries, and records each send as an event every coordinator receives.
///
/// Guarantee: each alert change reaches each of its channels once, while coordinators fail, as
/// long as the sending coordinator's record of a send reaches the next one before that one sends.
/// Its limit: a sender that dies after the receiver took the request but before its record left
/// (or whose answer was lost), and two coordinators that both believe themselves lowest for a
/// moment, can send a notice twice. Every notice carries a stable dedup key (the `Idempotency-Key`
/// header, the webhook's `groupKey`, PagerDuty's `dedup_key`) for receivers to drop the second.
actor Notifier: Service {
    private let relay: EventRelay
    private let membership: MembershipService
    private let peers: PeerClients
    private let nodeID: String
    private let isCoordinator: Bool
    private let interval: Duration
    private let logger: Logger

    private var ledger = NotificationLedger()
    /// Per notice (dedup key): failed attempts so far and when the next may start.
    private var retries: [String: (attempts: Int, nextAt: ContinuousClock.Instant)] = [:]
    private var counts: [String: Counts] = [:]

    struct Counts {
        var sent: UInt64 = 0
        var repeats: UInt64 = 0
        var failed: UInt64 = 0
        var dead: UInt64 = 0
        var silenced: UInt64 = 0
    }
    private var sending = false
    /// Whether this coordinator has copied what another live coordinator knows (channels,
    /// silences, alert changes and notification records published before it joined or while it
    /// was away). Until then it sends only while no other coordinator is live.
    private var caughtUp = false
    private var nextCatchUp = ContinuousClock.now
    /// When the notifier started, and since when its catch-up has been failing.
    private let started = ContinuousClock.now
    private var catchUpFailingSince: ContinuousClock.Instant?
    /// The other coordinators that were live in the last round: one that comes back (a restart,
    /// a healed partition) may hold records and silences this one missed, so it catches up again.
    private var lastLive: Set<String> = []

    /// How long a notifier waits for membership before it counts itself alone (a restarted node
    /// knows only itself for a moment), and how long a failing catch-up may hold sending back.
    static let startupGrace: Duration = .seconds(5)
    static let catchUpPatience: Duration = .seconds(30)

    /// Attempts per notice before it is given up (a dead letter); the waits between them double
    /// from 0.5 s up to 30 s (about 2.5 minutes in all).
    static let maxAttempts = 8
    static let requestTimeout: TimeAmount = .seconds(5)
    static let pagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

    init(
        relay: EventRelay, membership: MembershipService, peers: PeerClients, nodeID: String, isCoordinator: Bool,
        interval: Duration = .milliseconds(200), logger: Logger
    ) {
        self.relay = relay
        self.membership = membership
        self.peers = peers
        self.nodeID = nodeID
        self.isCoordinator = isCoordinator
        self.interval = interval
        self.logger = logger
    }

    func run() async {
        guard isCoordinator else {
            // Not a coordinator: nothing to send, but the service runs until the node stops.
            await repeatUntilStopped(every: .seconds(60)) {}
            return
        }
        for event in await relay.receivedEvents() { ledger.absorb(event) }
        await relay.listen { [weak self] event in await self?.absorb(event) }
        while !isStopping {
            await round()
            try? await Task.sleep(for: interval)
        }
    }

    func absorb(_ event: Infranaut_V1_ClusterEvent) {
        ledger.absorb(event)
    }

    /// Sends the notices owed, when this coordinator is the lowest live one and knows what the
    /// others know.
    private func round() async {
        let live = await membership.coordinators.filter { $0.live && !$0.left }
        let others = live.filter { $0.id != nodeID }
        let otherIDs = Set(others.map(\.id))
        if !otherIDs.subtracting(lastLive).isEmpty {
            caughtUp = false
            catchUpFailingSince = nil
        }
        lastLive = otherIDs
        if !caughtUp, !others.isEmpty, ContinuousClock.now >= nextCatchUp {
            await catchUp(from: others)
        }
        // Alone only once membership had time to learn the cluster; a catch-up that keeps failing
        // holds sending back for a while, then this coordinator sends what it knows (a receiver
        // may see a notice twice then; the dedup key covers it).
        let alone = others.isEmpty && ContinuousClock.now - started >= Self.startupGrace
        if !caughtUp, let since = catchUpFailingSince, ContinuousClock.now - since >= Self.catchUpPatience {
            logger.warning("no other coordinator answered a catch-up for 30 s; sending what this one knows")
            caughtUp = true
            catchUpFailingSince = nil
        }
        sending = live.map(\.id).min() == nodeID && (caughtUp || alone)
        guard sending else { return }
        for notice in ledger.due(nowMs: Int64(Date().timeIntervalSince1970 * 1000)) {
            let key = notice.dedupKey
            let name = notice.channel.name
            if let silence = notice.silencedBy {
                counts[name, default: Counts()].silenced += 1
                await record(notice, delivered: false, silencedBy: silence)
                continue
            }
            if let retry = retries[key], retry.nextAt > .now { continue }
            switch await send(notice) {
            case .success:
                counts[name, default: Counts()].sent += 1
                if notice.repetition > 0 { counts[name, default: Counts()].repeats += 1 }
                await record(notice, delivered: true)
            case .failure(let reason):
                counts[name, default: Counts()].failed += 1
                let attempts = (retries[key]?.attempts ?? 0) + 1
                if attempts >= Self.maxAttempts {
                    counts[name, default: Counts()].dead += 1
                    logger.error(
                        "a notification was given up after \(attempts) attempts",
                        metadata: ["channel": "\(name)", "reason": "\(reason)"])
                    await record(notice, delivered: false)
                } else {
                    let wait = min(30.0, 0.5 * pow(2, Double(attempts - 1)))
                    retries[key] = (attempts, .now + .milliseconds(Int(wait * 1000)))
                    logger.warning(
                        "a notification failed; retrying", metadata: ["channel": "\(name)", "reason": "\(reason)"])
                }
            }
        }
    }

    /// Kinds a catch-up copies, and how many of the newest of each group it asks for (the
    /// configured kinds are kept apart in every inbox, so the newest 10,000 are all of them).
    static let catchUpGroups: [(kinds: [String], limit: UInt32)] = [
        ([NotificationLedger.channelKind], 10_000),
        ([NotificationLedger.silenceKind], 10_000),
        ([ModelMonitor.alertEventKind, NotificationLedger.notifiedKind], 10_000),
    ]

    /// Copies into this coordinator's inbox the events of the notification kinds another live
    /// coordinator holds (the lowest by id that answers): an event goes only to the coordinators
    /// known when it was published, so one that joined later, or restarted after a long absence,
    /// would not know the channels, the silences, or which changes were already sent.
    private func catchUp(from others: [DeliveryQueue.Coordinator]) async {
        for peer in others.sorted(by: { $0.id < $1.id }) {
            var copied: [Infranaut_V1_ReceivedEvent] = []
            var answered = true
            for group in Self.catchUpGroups {
                let request = Infranaut_V1_Request.with {
                    $0.version = 1
                    $0.hops = 1
                    $0.events = .with {
                        $0.limit = group.limit
                        $0.kinds = group.kinds
                    }
                }
                guard let reply = try? await peers.call(request, to: peer.address, timeout: .seconds(5)),
                    case .events(let listed) = reply.body, listed.status.code == .ok
                else {
                    answered = false
                    break
                }
                copied += listed.events
            }
            guard answered else { continue }
            do {
                let added = try await relay.adopt(copied)
                caughtUp = true
                catchUpFailingSince = nil
                logger.info(
                    "caught up with another coordinator's notification events",
                    metadata: ["from": "\(peer.id)", "events": "\(copied.count)", "new": "\(added)"])
                return
            } catch {
                logger.warning(
                    "the caught-up events could not be stored; trying again", metadata: ["error": "\(error)"])
            }
        }
        nextCatchUp = .now + .seconds(2)
        if catchUpFailingSince == nil { catchUpFailingSince = .now }
    }

    /// Notes the notice as sent (or given up) here and tells every coordinator.
    private func record(_ notice: NotificationLedger.Notice, delivered: Bool, silencedBy: String = "") async {
        retries[notice.dedupKey] = nil
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for info in notice.alerts {
            ledger.markNotified(info, channel: notice.channel.name, repetition: notice.repetition)
            let record = Infranaut_V1_NotifiedRecord.with {
                $0.fingerprint = info.fingerprint
                $0.sequence = info.sequence
                $0.channel = notice.channel.name
                $0.byNode = nodeID
                $0.atUnixMs = now
                $0.delivered = delivered
                $0.silencedBy = silencedBy
                $0.repetition = UInt32(clamping: notice.repetition)
            }
            guard let payload = try? record.serializedData() else { continue }
            let answer = await relay.publish(
                .with {
                    $0.id =
                        "notified/\(info.fingerprint)/\(info.sequence)/\(notice.channel.name)"
                        + (notice.repetition == 0 ? "" : "/\(notice.repetition)")
                    $0.kind = NotificationLedger.notifiedKind
                    $0.payload = payload
                })
            if answer.status.code != .ok {
                logger.warning(
                    "the record of a notification could not be published; another coordinator may send it again",
                    metadata: ["status": "\(answer.status.message)"])
            }
        }
    }

    struct SendFailure: Error, CustomStringConvertible {
        let description: String
    }

    private func send(_ notice: NotificationLedger.Notice) async -> Result<Void, SendFailure> {
        let channel = notice.channel
        let secret: String?
        do {
            secret = try Self.secret(of: channel)
        } catch {
            return .failure(error)
        }
        do {
            switch channel.type {
            case .webhook:
                return await post(
                    try NotificationFormats.webhook(notice), to: secret ?? channel.url, key: notice.dedupKey)
            case .slack:
                return await post(
                    try NotificationFormats.slack(notice), to: secret ?? channel.url, key: notice.dedupKey)
            case .pagerduty:
                guard let secret else { return .failure(SendFailure(description: "no routing key")) }
                let url = channel.url.isEmpty ? Self.pagerDutyURL : channel.url
                for body in try NotificationFormats.pagerDuty(notice, routingKey: secret) {
                    if case .failure(let failure) = await post(body, to: url, key: notice.dedupKey) {
                        return .failure(failure)
                    }
                }
                return .success(())
            default:
                return .failure(SendFailure(description: "the channel has no type this node knows"))
            }
        } catch {
            return .failure(SendFailure(description: "the notice could not be encoded: \(error)"))
        }
    }

    /// POSTs `body`; only the status is looked at (the address is never logged: it may hold a
    /// secret).
    private func post(_ body: [UInt8], to url: String, key: String) async -> Result<Void, SendFailure> {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: key)
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: Self.requestTimeout)
            _ = try? await response.body.collect(upTo: 64 << 10)
            guard (200..<300).contains(response.status.code) else {
                return .failure(SendFailure(description: "answered \(response.status.code)"))
            }
            return .success(())
        } catch {
            return .failure(SendFailure(description: "no answer (\(type(of: error)))"))
        }
    }

    /// The channel's secret, read now from this coordinator's file or environment; nil when the
    /// channel names none.
    static func secret(of channel: Infranaut_V1_NotificationChannel) throws(SendFailure) -> String? {
        if !channel.secretFile.isEmpty {
            guard let data = FileManager.default.contents(atPath: channel.secretFile), data.count <= 64 << 10,
                let text = String(data: data, encoding: .utf8)
            else {
                throw SendFailure(description: "the secret file cannot be read on this coordinator")
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if !channel.secretEnv.isEmpty {
            guard let value = ProcessInfo.processInfo.environment[channel.secretEnv], !value.isEmpty else {
                throw SendFailure(description: "the secret's environment variable is not set on this coordinator")
            }
            return value
        }
        return nil
    }

    /// Whether this coordinator sends the notifications now.
    var isSending: Bool { sending }

    /// The silences this coordinator knows, newest first; those ended over a day ago are left out.
    func silences(nowMs: Int64) -> Infranaut_V1_SilencesResponse {
        .with {
            $0.status = .ok
            $0.silences = ledger.silences.values.filter { $0.endsUnixMs > nowMs - 86_400_000 }
                .sorted { ($0.startsUnixMs, $0.id) > ($1.startsUnixMs, $1.id) }
        }
    }

    /// The silence `id` as this coordinator knows it.
    func silence(_ id: String) -> Infranaut_V1_Silence? { ledger.silences[id] }

    /// The channels this coordinator knows, with what it sent through them.
    func channels() -> Infranaut_V1_ChannelsResponse {
        .with {
            $0.status = .ok
            $0.sending = sending
            $0.channels = ledger.channels.keys.sorted().map { name in
                let count = counts[name] ?? Counts()
                return .with {
                    $0.channel = ledger.channels[name]!
                    $0.sent = count.sent
                    $0.failedAttempts = count.failed
                    $0.deadLetters = count.dead
                    $0.silenced = count.silenced
                    $0.repeats = count.repeats
                }
            }
        }
    }
}
