/// Reliable delivery of events to every coordinator: the protocol logic, without I/O.
///
/// A publisher keeps each event until every coordinator that should have it acknowledged it:
/// - the targets of an event are the coordinators known when it was published (down ones
///   included), plus those that become live while it is pending;
/// - a target that is dead (or forgotten by the membership) stays a target for `deadRetention`
///   from when it was first seen down (a coordinator killed mid-delivery gets the event once it is
///   back, if it returns in time); after that, or when it left gracefully, it is dropped;
/// - a failed or unanswered attempt is retried with exponential backoff (`initialBackoff`
///   doubling to `maxBackoff`); at most one attempt per (event, target) is in flight;
/// - an event is complete, and forgotten, when every target acknowledged it; one published while
///   no coordinator is live waits (up to `deadRetention`) for one to appear.
/// Receivers deduplicate by event id, so a retry after a lost acknowledgement is harmless.
///
/// Time is a `Duration` since an arbitrary origin, as in `SWIMInstance`, so the queue can be
/// driven by a simulated clock.
public struct DeliveryQueue: Sendable {
    public struct Settings: Sendable {
        /// First retry delay after a failed attempt. Default 200 ms.
        public var initialBackoff: Duration = .milliseconds(200)
        /// Largest retry delay. Default 5 s.
        public var maxBackoff: Duration = .seconds(5)
        /// How long a dead coordinator is still waited for. Default 5 minutes.
        public var deadRetention: Duration = .seconds(300)
        public init() {}
    }

    /// A coordinator as the membership sees it.
    public struct Coordinator: Hashable, Sendable {
        public var id: String
        public var address: String
        /// Alive or suspect, with a known address.
        public var live: Bool
        /// Left gracefully: no longer a target.
        public var left: Bool
        public init(id: String, address: String, live: Bool, left: Bool = false) {
            self.id = id
            self.address = address
            self.live = live
            self.left = left
        }
    }

    /// One attempt to make: send event `id` to `address`.
    public struct Attempt: Hashable, Sendable {
        public var id: String
        public var target: String
        public var address: String
    }

    struct TargetState: Sendable {
        var address: String
        var failures = 0
        var nextAttemptAt: Duration
        var inFlight = false
        var deadSince: Duration?
    }

    struct Pending: Sendable {
        var payload: [UInt8]
        var targets: [String: TargetState]
        /// Targets that acknowledged: never targeted again.
        var acknowledged: Set<String> = []
        var sequence: Int
        var publishedAt: Duration
    }

    public let settings: Settings
    private var pending: [String: Pending] = [:]
    /// Events dropped by expiry since the last `takeExpired()` (their publisher forgets them).
    private var expired: [String] = []
    private var coordinators: [String: Coordinator] = [:]
    private var published = 0

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// Events not yet acknowledged by every target.
    public var pendingIDs: [String] { pending.sorted { $0.value.sequence < $1.value.sequence }.map(\.key) }

    /// The targets event `id` still waits for.
    public func waitingTargets(of id: String) -> Set<String> { Set(pending[id].map { Array($0.targets.keys) } ?? []) }

    public func payload(of id: String) -> [UInt8]? { pending[id]?.payload }

    /// Events pending, the bound a publisher checks before accepting more.
    public var pendingCount: Int { pending.count }

    /// Adds an event. False (and no change) when an event with this id is already pending.
    @discardableResult
    public mutating func publish(id: String, payload: [UInt8], now: Duration) -> Bool {
        guard pending[id] == nil else { return false }
        // Every coordinator that has not left, down ones included: a coordinator that is dead when
        // the event is published still gets it if it returns within the retention.
        var targets: [String: TargetState] = [:]
        for coordinator in coordinators.values where !coordinator.left {
            targets[coordinator.id] = TargetState(
                address: coordinator.address, nextAttemptAt: now, deadSince: coordinator.live ? nil : now)
        }
        published += 1
        pending[id] = Pending(payload: payload, targets: targets, sequence: published, publishedAt: now)
        return true
    }

    /// The membership's current coordinators (all of them, live or not; a coordinator missing
    /// from the list left or was forgotten).
    public mutating func coordinatorsChanged(_ current: [Coordinator], now: Duration) {
        coordinators = Dictionary(current.map { ($0.id, $0) }, uniquingKeysWith: { $1 })
        for id in pending.keys {
            guard var entry = pending[id] else { continue }
            for coordinator in current
            where coordinator.live && !coordinator.left && !entry.acknowledged.contains(coordinator.id) {
                if var target = entry.targets[coordinator.id] {
                    target.deadSince = nil
                    if target.address != coordinator.address {
                        // Restarted elsewhere: try the new address now.
                        target.address = coordinator.address
                        target.nextAttemptAt = now
                    }
                    entry.targets[coordinator.id] = target
                } else {
                    entry.targets[coordinator.id] = TargetState(address: coordinator.address, nextAttemptAt: now)
                }
            }
            for (targetID, var target) in entry.targets {
                let coordinator = coordinators[targetID]
                if coordinator?.left == true {
                    entry.targets[targetID] = nil
                    continue
                }
                // Not live, or forgotten by the membership (its tombstone expired): dead, and waited
                // for until the retention runs out.
                if !(coordinator?.live ?? false) && target.deadSince == nil {
                    target.deadSince = now
                    entry.targets[targetID] = target
                }
            }
            pending[id] = entry
        }
        expire(now: now)
    }

    /// Attempts due at `now`, oldest event first; each is marked in flight until `delivered` or
    /// `failed` is called for it.
    public mutating func due(now: Duration, limit: Int = 64) -> [Attempt] {
        expire(now: now)
        var out: [Attempt] = []
        for id in pendingIDs {
            guard var entry = pending[id] else { continue }
            for targetID in entry.targets.keys.sorted() {
                guard out.count < limit, var target = entry.targets[targetID] else { continue }
                guard !target.inFlight, target.deadSince == nil, target.nextAttemptAt <= now,
                    coordinators[targetID]?.live ?? false
                else { continue }
                target.inFlight = true
                entry.targets[targetID] = target
                out.append(Attempt(id: id, target: targetID, address: target.address))
            }
            pending[id] = entry
            if out.count >= limit { break }
        }
        return out
    }

    /// The target acknowledged the event (stored it, or already had it).
    public mutating func delivered(_ attempt: Attempt) {
        guard var entry = pending[attempt.id] else { return }
        entry.targets[attempt.target] = nil
        entry.acknowledged.insert(attempt.target)
        pending[attempt.id] = entry.targets.isEmpty ? nil : entry
    }

    /// The attempt failed or timed out: retry later with backoff.
    public mutating func failed(_ attempt: Attempt, now: Duration) {
        guard var entry = pending[attempt.id], var target = entry.targets[attempt.target] else { return }
        target.inFlight = false
        target.failures += 1
        let exponent = min(target.failures - 1, 20)
        let backoff = min(settings.initialBackoff * (1 << exponent), settings.maxBackoff)
        target.nextAttemptAt = now + backoff
        entry.targets[attempt.target] = target
        pending[attempt.id] = entry
    }

    /// When the next attempt is due, if any.
    public var nextDue: Duration? {
        pending.values.flatMap { $0.targets.values.filter { !$0.inFlight && $0.deadSince == nil }.map(\.nextAttemptAt) }
            .min()
    }

    /// When the queue next has something to do that no call brings about: an attempt falls due, or a
    /// dead target or a target-less event reaches the retention. Nil when nothing is pending. A shell
    /// can sleep until then, waking earlier only for a publish, a finished attempt or a change of
    /// coordinators.
    public var nextDeadline: Duration? {
        var deadline = nextDue
        func consider(_ time: Duration) { deadline = min(deadline ?? time, time) }
        for entry in pending.values {
            for target in entry.targets.values {
                if let since = target.deadSince { consider(since + settings.deadRetention) }
            }
            if entry.targets.isEmpty { consider(entry.publishedAt + settings.deadRetention) }
        }
        return deadline
    }

    /// Drops targets dead for longer than the retention. An event left without targets waits
    /// for a coordinator to appear until it is `deadRetention` old.
    private mutating func expire(now: Duration) {
        for id in Array(pending.keys) {
            guard var entry = pending[id] else { continue }
            for (targetID, target) in entry.targets {
                if let since = target.deadSince, now - since >= settings.deadRetention { entry.targets[targetID] = nil }
            }
            if entry.targets.isEmpty && now - entry.publishedAt >= settings.deadRetention {
                pending[id] = nil
                expired.append(id)
            } else {
                pending[id] = entry
            }
        }
    }

    /// The events dropped because every coordinator they still waited for stayed away past the
    /// retention, since the last call.
    public mutating func takeExpired() -> [String] {
        defer { expired = [] }
        return expired
    }
}
