import Monitoring

/// The SWIM membership protocol with the Lifeguard refinements, as a pure state machine.
///
/// The instance never reads a clock, never does I/O and never spawns tasks: the shell hands it
/// events (a received message, a timer tick, a join or leave request) together with the current
/// time, and executes the `SWIMDirective`s it returns. Randomness comes from the seed, so a
/// simulation that feeds the same events gets the same directives.
///
/// Shell contract:
/// 1. Create the instance, then call `join(seeds:now:)` once (no seeds: form a new cluster).
/// 2. Deliver every received `SWIMMessage` to `onMessage(_:now:)`.
/// 3. Keep one timer; every result ends with `.scheduleTick(at:)`, which replaces the previous
///    schedule. When it fires, call `onTick(now:)`. Early or late ticks are harmless.
/// 4. Execute `.send` (best effort, drop on error) and feed `.memberChanged` to the placement.
/// 5. `leave(now:)` announces a graceful departure; keep delivering messages and ticks for a few
///    gossip intervals afterwards so the announcement spreads, then stop.
///
/// `now` is a `Duration` since any fixed origin (for example `ContinuousClock` time at shell
/// start); it must not go backwards.
public struct SWIMInstance: Sendable {
    /// The settings the instance was created with.
    public let settings: SWIMSettings
    /// This node's own record. Its incarnation rises when it refutes a suspicion.
    public internal(set) var myself: Member
    /// Lifeguard's local health score (0 is healthy, at most `settings.maxLocalHealth`). Probe
    /// interval and timeout are multiplied by `1 + localHealth`.
    public internal(set) var localHealth: Int = 0

    var records: [NodeID: MemberRecord] = [:]
    /// All known member ids except `myself`, sorted, so random choices are reproducible.
    var sortedIDs: [NodeID] = []
    /// Every other member heard of that has not left gracefully. Unlike `records`, it keeps dead
    /// members after their tombstones expire, so a node cut off from the others keeps counting them.
    var everKnown: Set<NodeID> = []
    var cachedLiveCount: Int?
    var rng: SplitMix64
    var lastSequence: UInt64 = 0
    var probeOrder: [NodeID] = []
    var probeCursor = 0
    var probe: ProbeState?
    var relays: [UInt64: Relay] = [:]
    var gossipQueue = GossipQueue()
    var started = false
    var leaving = false
    var seeds: [String] = []
    var nextProbeAt: Duration = .zero
    var nextGossipAt: Duration = .zero
    var nextPushPullAt: Duration = .zero
    var nextJoinAt: Duration?
    /// Members with a pending timer: suspects (suspicion timeout) and tombstones (expiry).
    var timedMembers: Set<NodeID> = []

    /// Creates an instance for this node; nothing happens until `join(seeds:now:)`.
    /// - Parameters:
    ///   - settings: protocol tuning.
    ///   - myself: this node. Its status is forced to `alive`. A shell that persists the last
    ///     incarnation may pass it here; otherwise a restarted node raises its incarnation when it
    ///     learns its previous life's record from the cluster.
    ///   - seed: seed of the PRNG behind probe order and peer choices.
    public init(settings: SWIMSettings = SWIMSettings(), myself: Member, seed: UInt64) {
        precondition(
            settings.probeTimeout * 2 <= settings.probeInterval, "probeTimeout must be at most probeInterval/2")
        self.settings = settings
        var me = myself
        me.status = .alive
        self.myself = me
        self.rng = SplitMix64(seed: seed ^ 0x5357_494D)  // "SWIM"
    }

    // MARK: Events

    /// Sets this node's client and peer addresses before it joins (they then travel with every
    /// update about this node).
    public mutating func setEndpoints(client: String, peer: String) {
        myself.clientAddress = client
        myself.peerAddress = peer
    }

    /// Starts the protocol and asks every seed address to let this node in. Retries every
    /// `joinRetryInterval` until some member is known. With no seeds, forms a cluster of one.
    public mutating func join(seeds: [String], now: Duration) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        started = true
        leaving = false
        myself.status = .alive
        var unique: [String] = []
        for seed in seeds where seed != myself.address && !unique.contains(seed) { unique.append(seed) }
        self.seeds = unique
        nextProbeAt = now + settings.probeInterval.scaled(by: Double.random(in: 0.1...1.0, using: &rng))
        nextGossipAt = now
        nextPushPullAt = now + settings.pushPullInterval.scaled(by: Double.random(in: 0.5...1.0, using: &rng))
        gossipQueue.enqueue(MemberUpdate(myself))
        if !unique.isEmpty {
            sendJoin(into: &out)
            nextJoinAt = now + settings.joinRetryInterval
        }
        return finish(out, now: now)
    }

    /// Announces a graceful departure: marks this node `left`, sends the announcement to every
    /// live member and stops probing. Incoming messages are still answered.
    public mutating func leave(now: Duration) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        guard !leaving else { return finish(out, now: now) }
        leaving = true
        probe = nil
        nextJoinAt = nil
        myself.status = .left
        let update = MemberUpdate(myself)
        gossipQueue.enqueue(update)
        for id in sortedIDs {
            guard let record = records[id], record.member.status.isLive else { continue }
            let message = SWIMMessage(sender: myself.peer, payload: .leave, gossip: [update])
            out.append(.send(message, to: record.member.address))
        }
        return finish(out, now: now)
    }

    /// Handles the protocol timer: probe rounds, probe and relay timeouts, suspicion timeouts,
    /// tombstone expiry, gossip fan-out, push-pull and join retries that are due at `now`.
    public mutating func onTick(now: Duration) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        handleProbeDeadlines(now: now, into: &out)
        handleRelayDeadlines(now: now, into: &out)
        handleMemberTimers(now: now, into: &out)
        if started && !leaving && now >= nextProbeAt {
            startProbe(now: now, into: &out)
            nextProbeAt = now + settings.probeInterval * healthScale
        }
        if now >= nextGossipAt {
            gossipRound(into: &out)
            nextGossipAt = now + settings.gossipInterval
        }
        if started && !leaving && now >= nextPushPullAt {
            pushPullRound(into: &out)
            nextPushPullAt = now + settings.pushPullInterval
        }
        if let joinAt = nextJoinAt, now >= joinAt {
            if liveCount > 1 {
                nextJoinAt = nil
            } else {
                sendJoin(into: &out)
                nextJoinAt = now + settings.joinRetryInterval
            }
        }
        return finish(out, now: now)
    }

    /// Handles one message received from a peer.
    public mutating func onMessage(_ message: SWIMMessage, now: Duration) -> [SWIMDirective] {
        var out: [SWIMDirective] = []
        let sender = message.sender
        if sender.id != myself.id {
            records[sender.id]?.lastHeard = now
        }
        for update in message.gossip {
            apply(update, now: now, into: &out)
        }
        switch message.payload {
        case .ping(let sequence):
            send(.ack(sequence: sequence), to: sender, into: &out)
        case .pingReq(let sequence, let target):
            relayProbe(sequence: sequence, target: target, requester: sender, now: now, into: &out)
        case .ack(let sequence):
            handleAck(sequence: sequence, from: sender, now: now, into: &out)
        case .nack(let sequence):
            if probe?.sequence == sequence { probe?.nackers.insert(sender.id) }
        case .pushPull(let members, let isReply):
            for update in members { apply(update, now: now, into: &out) }
            if !isReply { sendFullState(to: sender.address, isReply: true, into: &out) }
        case .join:
            sendFullState(to: sender.address, isReply: true, into: &out)
        case .leave, .gossip:
            break
        }
        return finish(out, now: now)
    }

    // MARK: Queries

    /// Every known member, `myself` included, tombstones included, sorted by id.
    public var members: [Member] {
        var all = sortedIDs.compactMap { records[$0]?.member }
        let index = all.firstIndex { $0.id > myself.id } ?? all.count
        all.insert(myself, at: index)
        return all
    }

    /// The members that are `alive` or `suspect` (they still own shards), `myself` included
    /// unless it has left, sorted by id.
    public var liveMembers: [Member] {
        members.filter { $0.status.isLive }
    }

    /// This node's record of `id` (`myself` for its own id), or `nil` if unknown or forgotten.
    public func member(_ id: NodeID) -> Member? {
        id == myself.id ? myself : records[id]?.member
    }

    /// When this node last received a message from `id`, or `nil` if never.
    public func lastHeard(_ id: NodeID) -> Duration? {
        records[id]?.lastHeard
    }

    /// Whether this node sees a majority of the members it knows: live members (`myself`
    /// included) against every member ever heard of that has not left gracefully (dead ones keep
    /// counting after their tombstones expire, so the minority side of a partition stays `false`).
    public var seesMajority: Bool {
        MajorityCheck.hasMajority(reachable: liveCount, known: knownMemberCount)
    }

    /// Members ever heard of that have not left gracefully, `myself` included.
    public var knownMemberCount: Int { everKnown.count + 1 }

    /// The next time `onTick(now:)` has work to do (also given by the last `.scheduleTick`).
    public var nextDeadline: Duration? {
        var deadline: Duration?
        func consider(_ time: Duration?) {
            guard let time else { return }
            deadline = deadline.map { min($0, time) } ?? time
        }
        if started && !leaving {
            consider(nextProbeAt)
            consider(nextPushPullAt)
        }
        if let probe {
            consider(probe.indirectSent ? probe.indirectDeadline : probe.directDeadline)
        }
        for relay in relays.values { consider(relay.deadline) }
        if !gossipQueue.isEmpty { consider(nextGossipAt) }
        consider(nextJoinAt)
        for id in timedMembers { consider(memberDeadline(id)) }
        return deadline
    }

    // MARK: Helpers

    /// Number of live members, `myself` included when not left.
    var liveCount: Int {
        if let cachedLiveCount { return cachedLiveCount }
        let others = records.values.reduce(0) { $0 + ($1.member.status.isLive ? 1 : 0) }
        return others + (myself.status.isLive ? 1 : 0)
    }

    var healthScale: Int { localHealth + 1 }

    mutating func adjustHealth(by delta: Int) {
        localHealth = min(settings.maxLocalHealth, max(0, localHealth + delta))
    }

    mutating func nextSequence() -> UInt64 {
        lastSequence &+= 1
        return lastSequence
    }

    private mutating func finish(_ out: [SWIMDirective], now: Duration) -> [SWIMDirective] {
        var out = out
        cachedLiveCount = nil
        cachedLiveCount = liveCount
        out.append(.scheduleTick(at: max(now, nextDeadline ?? now + settings.probeInterval)))
        return out
    }
}
