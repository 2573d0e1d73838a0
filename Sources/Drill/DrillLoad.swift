import Cluster
import Foundation
import Synchronization
import Tabular
import Telemetry
import Wire

/// Every batch the drill's client sent, and what became of it.
struct SentBatch: Sendable {
    var model: String
    var key: String
    var rows: Int
    var firstSent: ContinuousClock.Instant
    var acknowledged: ContinuousClock.Instant?
    /// The client address of the node whose answer acknowledged it.
    var acknowledgedBy: String?
    /// When the acknowledged attempt was sent, and whether its answer was a replay (the key was
    /// applied before that attempt, so the answer says the batch was committed earlier).
    var acknowledgedAttemptSent: ContinuousClock.Instant?
    var acknowledgedAsReplay = false
}

/// A request the client saw refused (retryably) or unanswered: when, and by which node.
struct FailedAttempt: Sendable {
    var at: ContinuousClock.Instant
    var target: String
}

/// The drill's client: `senders` tasks push batches with unique idempotency keys to the nodes in
/// `targets` (round robin), paced to `rate` batches per second in all, and retry every retryable
/// refusal or transport failure with the same key (on the next node) until the batch is
/// acknowledged. After `stop()`, each sender finishes the batch it holds, giving up only at
/// `drainDeadline`; a batch never acknowledged is "unresolved" (it may or may not be applied).
/// Probes (``probe(_:through:until:)``) are batches of the same kind sent to chosen nodes; they
/// are in the ledger as well, so the audit checks them too.
final class DrillLoad: Sendable {
    struct Settings: Sendable {
        var models: [String]
        var senders = 4
        var rate = 400
        var rowsPerBatch = 20
        var requestTimeout: Duration = .seconds(4)
        /// Per attempt of a probe: above the nodes' forward timeout (2 s), so a forwarded write can
        /// be answered.
        var probeTimeout: Duration = .seconds(3)
        var drainTimeout: Duration = .seconds(30)
        var runID: String
    }

    private struct State {
        var batches: [SentBatch] = []
        var targets: [String] = []
        var stopping = false
        var drainDeadline: ContinuousClock.Instant?
        var retries = 0
        var lastRetryReason = ""
        var fatal: String?
        /// Refused or unanswered attempts, oldest first (at most `maxFailedAttempts`).
        var failedAttempts: [FailedAttempt] = []
        var probes = 0
    }

    /// Failed attempts kept: far more than a drill of a few minutes makes (each sender waits at
    /// least 50 ms after one).
    private static let maxFailedAttempts = 200_000

    private let settings: Settings
    private let state = Mutex(State())
    private let tasks = Mutex<[Task<Void, Never>]>([])

    init(settings: Settings, targets: [String]) {
        self.settings = settings
        state.withLock { $0.targets = targets }
    }

    /// Client addresses the senders may use (nodes the drill has not killed or paused).
    func setTargets(_ targets: [String]) { state.withLock { $0.targets = targets } }

    var batches: [SentBatch] { state.withLock { $0.batches } }
    var retries: Int { state.withLock { $0.retries } }
    var lastRetryReason: String { state.withLock { $0.lastRetryReason } }
    var fatal: String? { state.withLock { $0.fatal } }
    var failedAttempts: [FailedAttempt] { state.withLock { $0.failedAttempts } }

    /// Whether every model in `models` had a batch first sent after `instant` acknowledged.
    func recovered(_ models: Set<String>, after instant: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            var pending = models
            // Batches are appended under the lock with their send time: newest last.
            for batch in state.batches.reversed() {
                if batch.firstSent <= instant { break }
                guard batch.acknowledged != nil else { continue }
                pending.remove(batch.model)
                if pending.isEmpty { return true }
            }
            return pending.isEmpty
        }
    }

    func start() {
        let started = ContinuousClock.now
        let spacing = Duration.seconds(Double(settings.senders) / Double(max(1, settings.rate)))
        let spawned = (0..<settings.senders).map { sender in
            Task { await self.send(as: sender, started: started, spacing: spacing) }
        }
        tasks.withLock { $0 = spawned }
    }

    /// Stops sending new batches and waits until every sender has finished the one it holds.
    func stop() async {
        state.withLock {
            $0.stopping = true
            $0.drainDeadline = .now + settings.drainTimeout
        }
        for task in tasks.withLock({ $0 }) { await task.value }
    }

    private func send(as sender: Int, started: ContinuousClock.Instant, spacing: Duration) async {
        var clients: [String: RequestClient] = [:]
        defer { for client in clients.values { client.close() } }
        var next = 0
        var turn = sender
        while !state.withLock({ $0.stopping || $0.fatal != nil }) {
            let slot = started + spacing * next
            if slot > .now { try? await Task.sleep(until: slot, clock: .continuous) }
            let model = settings.models[(sender + next * settings.senders) % settings.models.count]
            let key = "\(settings.runID)-\(sender)-\(next)"
            next += 1
            let bytes: [UInt8]
            do {
                bytes = try request(model: model, key: key, seed: next)
            } catch {
                state.withLock { $0.fatal = "batch \(key) for \(model) could not be encoded: \(error)" }
                return
            }
            let index = state.withLock {
                $0.batches.append(SentBatch(model: model, key: key, rows: settings.rowsPerBatch, firstSent: .now))
                return $0.batches.count - 1
            }
            while true {
                let (target, giveUp) = state.withLock { state -> (String?, Bool) in
                    let giveUp = state.drainDeadline.map { ContinuousClock.now > $0 } ?? false
                    guard !state.targets.isEmpty else { return (nil, giveUp) }
                    return (state.targets[turn % state.targets.count], giveUp)
                }
                if giveUp { break }
                turn += 1
                guard let target else {
                    try? await Task.sleep(for: .milliseconds(50))
                    continue
                }
                if clients[target] == nil, let made = try? RequestClient(dial: target) { clients[target] = made }
                let outcome = await attempt(bytes, batch: index, through: target, client: clients[target])
                if outcome.code == .ok { break }
                guard outcome.retryable else {
                    state.withLock {
                        $0.fatal =
                            "batch \(key) for \(model) was refused for good: \(outcome.code.name): \(outcome.message)"
                    }
                    return
                }
                state.withLock {
                    $0.retries += 1
                    $0.lastRetryReason = outcome.message
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// Sends one attempt of the batch at `index` and records its outcome: the acknowledgement, or a
    /// failed attempt.
    private func attempt(
        _ bytes: [UInt8], batch index: Int, through target: String, client: RequestClient?,
        timeout: Duration? = nil
    ) async -> Infranaut_V1_Status {
        var outcome: Infranaut_V1_Status
        var replayed = false
        let sent = ContinuousClock.now
        do {
            guard let client else { throw DrillError("cannot make a client for \(target)") }
            let reply = try await client.request(bytes, timeout: timeout ?? settings.requestTimeout)
            let response = try Infranaut_V1_Response(serializedBytes: reply)
            outcome = response.outcome
            replayed = response.ingest.replayed
        } catch {
            outcome = Infranaut_V1_Status(code: .unavailable, message: "\(target): \(error)")
        }
        let now = ContinuousClock.now
        state.withLock { state in
            if outcome.code == .ok {
                state.batches[index].acknowledged = now
                state.batches[index].acknowledgedBy = target
                state.batches[index].acknowledgedAttemptSent = sent
                state.batches[index].acknowledgedAsReplay = replayed
            } else if state.failedAttempts.count < Self.maxFailedAttempts {
                state.failedAttempts.append(FailedAttempt(at: now, target: target))
            }
        }
        return outcome
    }

    /// Sends a new batch of `model` through `target` alone, again with the same key after every
    /// retryable refusal or timeout, until it is acknowledged or `deadline` passes; returns when it
    /// was acknowledged. A refusal for good is the drill's fatal problem, as in the load.
    func probe(_ model: String, through target: String, until deadline: ContinuousClock.Instant) async
        -> ContinuousClock.Instant?
    {
        let number = state.withLock { state -> Int in
            state.probes += 1
            return state.probes
        }
        let key = "\(settings.runID)-probe-\(number)"
        let bytes: [UInt8]
        do {
            bytes = try request(model: model, key: key, seed: 1_000_000 + number)
        } catch {
            state.withLock { $0.fatal = "probe \(key) for \(model) could not be encoded: \(error)" }
            return nil
        }
        // Batches are only ever appended, so the index stays valid.
        let index = state.withLock { state -> Int in
            state.batches.append(SentBatch(model: model, key: key, rows: settings.rowsPerBatch, firstSent: .now))
            return state.batches.count - 1
        }
        let client = try? RequestClient(dial: target)
        defer { client?.close() }
        while ContinuousClock.now < deadline {
            let timeout = min(settings.probeTimeout, deadline - .now)
            let outcome = await attempt(bytes, batch: index, through: target, client: client, timeout: timeout)
            if outcome.code == .ok { return state.withLock { $0.batches[index].acknowledged } }
            guard outcome.retryable else {
                state.withLock {
                    $0.fatal =
                        "probe \(key) for \(model) was refused for good: \(outcome.code.name): \(outcome.message)"
                }
                return nil
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    private func request(model: String, key: String, seed: Int) throws -> [UInt8] {
        var builder = BatchBuilder(model: model, predictionColumn: "score")
        for row in 0..<settings.rowsPerBatch {
            builder.append([
                .number(Double((row * 7919 + seed * 104_729) % 1000) / 10), .number(Double((row + seed) % 100) / 100),
            ])
        }
        let batch = try builder.take(columns: ["x", "score"])
        return Infranaut_V1_Request.encodedIngest(key: key, batchBytes: try batch.serializedBytes())
    }
}
