import Monitoring

/// One replica of a Raft group, as a pure state machine: events in, `RaftDirective`s out.
///
/// Like `SWIMInstance`, the instance never reads a clock, never does I/O and never spawns
/// tasks. Randomness (election timeouts) comes from the seed.
///
/// Shell contract:
/// 1. Load the `RaftDurableState` from storage (empty for a new replica), restore the state
///    machine from the checkpoint its `snapshot` names (if any), create the instance with the
///    group's bootstrap voters (empty for a replica that will be added later), and call
///    `start(now:)`.
/// 2. Deliver every received message to `onMessage(_:now:)`, the timer to `onTick(now:)`,
///    client commands to `propose(_:now:)`, and membership and transfer requests to
///    `proposeConfiguration(_:now:)` and `transferLeadership(to:now:)`.
/// 3. Execute the directives of each result in order, and the results in the order they were
///    returned. `.persist` is a barrier: nothing after it (a send, an apply, a later result's
///    directives) may take effect before it is durable. Handing the instance new events while
///    a persist is in flight is fine; their directives queue behind it.
/// 4. A proposal is acknowledged to the client when the proposing replica applies an entry with
///    the index and term it was accepted at; the same index with another term means it was lost
///    to a leader change (never acknowledged, so the client retries).
/// 5. Compaction: after making a checkpoint of the state machine at an applied index durable
///    together with `snapshotMeta(at:)`, call `compact(through:)`, then delete the stored
///    entries the checkpoint covers.
/// 6. Snapshots: on `.sendSnapshot`, stream the latest durable checkpoint to the follower. On
///    receiving one completely, store it as pending and call `installSnapshot`; when it is
///    accepted, the `.persist` carrying it makes it the durable checkpoint and, once durable,
///    replaces the state machine; when it is not, discard it.
///
/// Invariants (checked after every step by the simulation in the tests):
/// - **Election safety**: at most one leader per term. A candidate needs votes from a majority
///   of its configuration, and a vote is cast at most once per term and is durable before the
///   grant is sent.
/// - **Log matching**: if two logs hold an entry with the same index and term, they are
///   identical up to it. A leader creates at most one entry per index in its term, and a
///   follower appends only after its entry at `prevIndex` has `prevTerm`.
/// - **Leader completeness**: a committed entry is in the log of every leader of a later term.
///   Votes go only to candidates whose log is at least as up to date (last term, then last
///   index), and a leader commits by counting replicas only for an entry of its own term
///   (Raft §5.4.2); earlier entries commit with it.
/// - **State-machine safety**: every replica applies the same entry at each index, because only
///   committed entries are applied, in index order.
/// - **Durability**: a replica answers a vote or acknowledges an append only after the term,
///   vote and entries that answer depends on are durable (`.persist` comes first), so a
///   committed entry survives any crash of a minority.
/// - **One voter at a time**: a configuration entry takes effect when appended and adds or
///   removes one voter; a leader proposes one only when the previous one is committed and it has
///   committed an entry of its own term, so any two successive configurations share a majority.
/// - **Snapshots hold committed entries only**: a replica compacts through its applied index
///   and installs a snapshot only from a leader of its current term, above its commit index; so
///   `snapshotIndex <= commitIndex == appliedIndex`, a snapshot never conflicts with a leader's
///   log, and entries a follower skips because its snapshot covers them are the leader's too.
/// - **Check-quorum and pre-vote**: a leader that has not heard from a majority within an
///   election timeout steps down; a replica raises its term only after a majority said it
///   could win, and a replica that heard from a leader within an election timeout grants no
///   (pre-)vote except for a leadership transfer. So a replica that was cut off cannot disrupt
///   a healthy group when it returns.
public struct RaftInstance: Sendable {
    /// Which safety rule to break, for the test that shows the simulation's checker catches it.
    enum BrokenRule: Sendable {
        /// Commit once a minority (majority minus one) holds an entry.
        case commitOnMinority
        /// Commit entries of earlier terms by counting replicas (ignores Raft §5.4.2).
        case commitEarlierTerms
    }

    /// What a leader knows about one follower.
    struct Progress: Sendable {
        /// The next index to send.
        var next: RaftIndex
        /// The highest index known to be replicated (durably) on the follower.
        var match: RaftIndex = 0
        /// Whether the follower's log is known to follow the leader's up to `match`: then appends
        /// are pipelined (`next` moves past what was sent, before the answer). Otherwise the leader
        /// probes, one append at a time, for where the logs agree.
        var replicating = false
        /// Set while a snapshot is on its way to the follower ("snapshotting"). Meanwhile the
        /// follower gets heartbeats that no log can reject, and no entries; it ends with a
        /// success at or above the snapshot's index.
        var snapshot: SnapshotInFlight?
    }

    /// A snapshot sent to a follower: the index it covers and when it was sent.
    struct SnapshotInFlight: Sendable {
        var index: RaftIndex
        var sentAt: Duration
    }

    /// This replica's id.
    public let id: NodeID
    /// The settings the instance was created with.
    public let settings: RaftSettings
    /// The current term (durable).
    public internal(set) var term: RaftTerm
    /// The vote cast in `term` (durable).
    public internal(set) var votedFor: NodeID?
    /// The latest snapshot: the log was compacted through `snapshot.index` (`nil`: never).
    public internal(set) var snapshot: RaftSnapshotMeta?
    /// The entries after the snapshot, contiguous: `log[i]` has index `firstIndex + i`. Use
    /// `entry(at:)` and `term(at:)` to look entries up by index.
    public internal(set) var log: [RaftEntry]
    /// The highest index known to be committed.
    public internal(set) var commitIndex: RaftIndex = 0
    /// The highest index handed to the state machine.
    public internal(set) var appliedIndex: RaftIndex = 0
    /// The current role.
    public internal(set) var role: RaftRole = .follower
    /// The leader of `term`, when known.
    public internal(set) var leader: NodeID?
    /// The voters in effect: those of the last configuration entry in the log, or the bootstrap
    /// voters when there is none.
    public internal(set) var voters: Set<NodeID>
    /// The index of the entry that set `voters` (0: the bootstrap voters).
    public internal(set) var configurationIndex: RaftIndex = 0
    /// Whether the group went quiet on this replica (RaftInstance+Quiescence.swift).
    public internal(set) var isQuiescent = false

    let bootstrapVoters: Set<NodeID>
    var rng: SplitMix64
    var electionDeadline: Duration = .zero
    var lastLeaderContact: Duration?
    var nextHeartbeat: Duration = .zero
    var quorumCheckAt: Duration = .zero
    var lastHeard: [NodeID: Duration] = [:]
    var votes: [NodeID: Bool] = [:]
    var progress: [NodeID: Progress] = [:]
    var transferTarget: NodeID?
    var transferDeadline: Duration = .zero
    var brokenRule: BrokenRule?

    /// Creates a replica from its durable state; nothing happens until `start(now:)`.
    /// - Parameters:
    ///   - id: this replica.
    ///   - voters: the group's initial voters (the same on every founding replica); empty for a
    ///     replica that joins through `proposeConfiguration` later.
    ///   - durable: what storage holds for this replica.
    ///   - seed: seed of the PRNG behind election timeouts.
    public init(
        id: NodeID, voters: Set<NodeID>, durable: RaftDurableState = RaftDurableState(),
        settings: RaftSettings = RaftSettings(), seed: UInt64
    ) {
        precondition(
            settings.heartbeatInterval * 2 <= settings.electionTimeout, "heartbeat must be well below election")
        self.id = id
        self.settings = settings
        self.term = durable.term
        self.votedFor = durable.votedFor
        self.snapshot = durable.snapshot
        let snapshotIndex = durable.snapshot?.index ?? 0
        self.log = Array(durable.log.drop { $0.index <= snapshotIndex })
        precondition(
            log.first.map { $0.index == snapshotIndex + 1 } ?? true, "the log must continue right after the snapshot")
        // Everything the snapshot covers is committed and already in the state machine the shell
        // restores from it.
        self.commitIndex = snapshotIndex
        self.appliedIndex = snapshotIndex
        self.bootstrapVoters = voters
        self.voters = voters
        self.rng = SplitMix64(seed: seed ^ 0x5241_4654)  // "RAFT"
        recomputeConfiguration()
    }

    // MARK: Queries

    /// The index of the last entry the snapshot covers (0 without a snapshot).
    public var snapshotIndex: RaftIndex { snapshot?.index ?? 0 }
    /// The term of the entry at `snapshotIndex` (0 without a snapshot).
    public var snapshotTerm: RaftTerm { snapshot?.term ?? 0 }
    /// The index of the first entry still in `log`.
    public var firstIndex: RaftIndex { snapshotIndex + 1 }
    /// The index of the last entry (the snapshot's when `log` is empty; 0 for a replica that
    /// holds nothing).
    public var lastIndex: RaftIndex { snapshotIndex + RaftIndex(log.count) }
    /// The term of the last entry (the snapshot's when `log` is empty).
    public var lastTerm: RaftTerm { log.last?.term ?? snapshotTerm }
    /// Whether this replica currently counts as a voter.
    public var isVoter: Bool { voters.contains(id) }

    /// What this replica's log must keep for others: on a leader, the highest index every replica
    /// it sends to is known to hold (0 while one has not answered yet; `lastIndex` with no other
    /// replica); elsewhere `nil` (only a leader sends entries, and one elected later sends a
    /// snapshot to a replica behind its log).
    public var heldByEveryFollower: RaftIndex? {
        guard role == .leader else { return nil }
        return progress.values.map(\.match).min() ?? lastIndex
    }
    /// A majority of the current voters.
    var quorum: Int { voters.count / 2 + 1 }

    /// The term of the entry at `index`: the snapshot's term at `snapshotIndex` (0 at index 0
    /// without a snapshot); `nil` when the log is shorter or the entry was compacted away.
    public func term(at index: RaftIndex) -> RaftTerm? {
        if index == snapshotIndex { return snapshotTerm }
        return entry(at: index)?.term
    }

    /// The entry at `index`; `nil` when the log is shorter or the entry was compacted away.
    public func entry(at index: RaftIndex) -> RaftEntry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return log[Int(index - firstIndex)]
    }

    /// The entries from `first` through `last`, both after the snapshot and at most `lastIndex`.
    func entries(from first: RaftIndex, through last: RaftIndex) -> ArraySlice<RaftEntry> {
        precondition(first > snapshotIndex && last <= lastIndex, "entries outside the log")
        guard first <= last else { return [] }
        return log[Int(first - firstIndex)...Int(last - firstIndex)]
    }

    // MARK: Events

    /// Starts the timers. Call once, after creating the instance.
    public mutating func start(now: Duration) -> [RaftDirective] {
        resetElectionDeadline(now: now)
        var out: [RaftDirective] = []
        // The only voter needs nobody's agreement: it leads at once instead of after a timeout.
        if voters == [id] { campaign(transfer: false, now: now, into: &out) }
        return finish(out, now: now)
    }

    /// Handles the timer: heartbeats and check-quorum on a leader, the election timeout elsewhere.
    public mutating func onTick(now: Duration) -> [RaftDirective] {
        var out: [RaftDirective] = []
        if isQuiescent { return finish(out, now: now) }
        if role == .leader {
            if transferTarget != nil && now >= transferDeadline { transferTarget = nil }
            if now >= quorumCheckAt {
                quorumCheckAt = now + settings.electionTimeout
                if !hasRecentQuorum(now: now) {
                    becomeFollower(term: term, leader: nil, now: now, into: &out)
                    return finish(out, now: now)
                }
            }
            if now >= nextHeartbeat {
                nextHeartbeat = now + settings.heartbeatInterval
                pruneRemovedPeers(now: now)
                if canQuiesce {
                    quiesce(into: &out)
                    return finish(out, now: now)
                }
                broadcastAppend(now: now, into: &out)
            }
        } else if now >= electionDeadline {
            resetElectionDeadline(now: now)
            leader = nil
            if isVoter { campaignPreVote(now: now, into: &out) }
        }
        return finish(out, now: now)
    }

    /// Handles a message from another replica of the group.
    public mutating func onMessage(_ message: RaftMessage, now: Duration) -> [RaftDirective] {
        var out: [RaftDirective] = []
        guard message.from != id else { return finish(out, now: now) }
        if case .quiesce = message.payload {
        } else if isQuiescent {
            unquiesce(now: now)
        }
        if message.term > term {
            switch message.payload {
            case .preVote:
                // Never adopt a pre-vote's term; refuse silently while a leader is alive.
                if inLease(now: now) { return finish(out, now: now) }
            case .preVoteResponse(granted: true):
                break
            case .requestVote(_, _, let transfer):
                if !transfer && inLease(now: now) { return finish(out, now: now) }
                becomeFollower(term: message.term, leader: nil, now: now, into: &out)
            case .append, .timeoutNow, .quiesce:
                becomeFollower(term: message.term, leader: message.from, now: now, into: &out)
            case .preVoteResponse(granted: false), .voteResponse, .appendResponse:
                becomeFollower(term: message.term, leader: nil, now: now, into: &out)
            }
        } else if message.term < term {
            // A stale sender: tell it the current term so that a deposed leader or a candidate
            // from the past steps down. Stale answers are dropped.
            switch message.payload {
            case .append, .quiesce:
                // A stale `quiesce` too: its leader must learn the term, or it stays quiet and
                // unaware while this replica campaigns.
                let reply = RaftMessage.Payload.appendResponse(success: false, index: lastIndex, rejectedPrev: 0)
                send(reply, to: message.from, into: &out)
            case .preVote:
                send(.preVoteResponse(granted: false), to: message.from, into: &out)
            case .requestVote:
                send(.voteResponse(granted: false), to: message.from, into: &out)
            default:
                break
            }
            return finish(out, now: now)
        }
        switch message.payload {
        case .preVote(let lastIndex, let lastTerm):
            let granted = message.term > term && isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
            let reply = RaftMessage(
                from: id, term: granted ? message.term : term, payload: .preVoteResponse(granted: granted))
            out.append(.send(reply, to: message.from))
        case .preVoteResponse(let granted):
            onPreVoteResponse(from: message.from, term: message.term, granted: granted, now: now, into: &out)
        case .requestVote(let lastIndex, let lastTerm, _):
            onRequestVote(from: message.from, lastIndex: lastIndex, lastTerm: lastTerm, now: now, into: &out)
        case .voteResponse(let granted):
            onVoteResponse(from: message.from, granted: granted, now: now, into: &out)
        case .append(let prevIndex, let prevTerm, let entries, let commit):
            guard role != .leader else { break }  // cannot happen: one leader per term
            if role != .follower || leader != message.from {
                becomeFollower(term: term, leader: message.from, now: now, into: &out)
            }
            lastLeaderContact = now
            resetElectionDeadline(now: now)
            onAppend(
                from: message.from, prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commit,
                into: &out)
        case .appendResponse(let success, let index, let rejectedPrev):
            guard role == .leader else { break }
            lastHeard[message.from] = now
            onAppendResponse(
                from: message.from, success: success, index: index, rejectedPrev: rejectedPrev, now: now, into: &out)
        case .timeoutNow:
            if role != .leader && isVoter { campaign(transfer: true, now: now, into: &out) }
        case .quiesce(let end, let endTerm, let commit):
            // Only the leader of a term sends `quiesce` in it, so like an append it names that
            // leader: a replica that forgot it (woken by a suspicion, or a pre-candidate whose
            // pre-votes the others refuse while they trust the leader) follows it again, instead
            // of staying leaderless while the leader keeps going quiet.
            guard role != .leader else { break }
            if role != .follower || leader != message.from {
                becomeFollower(term: term, leader: message.from, now: now, into: &out)
            }
            onQuiesce(from: message.from, lastIndex: end, lastTerm: endTerm, commit: commit)
        }
        return finish(out, now: now)
    }

    /// Appends a client command when this replica leads.
    /// - Returns: the outcome and the directives to execute.
    public mutating func propose(_ command: [UInt8], now: Duration) -> (RaftProposalOutcome, [RaftDirective]) {
        var out: [RaftDirective] = []
        guard role == .leader else { return (.notLeader(leader: leader), finish(out, now: now)) }
        guard transferTarget == nil else { return (.busy, finish(out, now: now)) }
        unquiesce(now: now)
        let entry = appendLocal(.command(command), now: now, into: &out)
        return (.accepted(index: entry.index, term: entry.term), finish(out, now: now))
    }

    // MARK: Helpers shared by the extensions

    /// Whether a leader is known to be alive: this replica leads, or heard from the leader within
    /// the minimum election timeout.
    func inLease(now: Duration) -> Bool {
        if role == .leader { return true }
        guard leader != nil, let contact = lastLeaderContact else { return false }
        return now - contact < settings.electionTimeout
    }

    func isUpToDate(lastIndex otherIndex: RaftIndex, lastTerm otherTerm: RaftTerm) -> Bool {
        otherTerm > lastTerm || (otherTerm == lastTerm && otherIndex >= lastIndex)
    }

    mutating func resetElectionDeadline(now: Duration) {
        let unit = settings.electionTimeout / 1024
        electionDeadline = now + settings.electionTimeout + unit * Int(rng.next() % 1024)
    }

    func send(_ payload: RaftMessage.Payload, to peer: NodeID, into out: inout [RaftDirective]) {
        out.append(.send(RaftMessage(from: id, term: term, payload: payload), to: peer))
    }

    /// Adopts `newTerm` (clearing the vote when it is newer) and follows `leader`.
    mutating func becomeFollower(
        term newTerm: RaftTerm, leader: NodeID?, now: Duration, into out: inout [RaftDirective]
    ) {
        if newTerm > term {
            term = newTerm
            votedFor = nil
            out.append(.persist(RaftPersist(term: term, votedFor: nil)))
        }
        isQuiescent = false
        if role == .leader || leader == nil { resetElectionDeadline(now: now) }
        role = .follower
        self.leader = leader
        if leader != nil { lastLeaderContact = now }
        votes = [:]
        progress = [:]
        transferTarget = nil
    }

    /// Emits the newly committed entries and the next timer.
    func nextWakeUp() -> Duration {
        if isQuiescent { return .seconds(Int64.max / 8) }
        guard role == .leader else { return electionDeadline }
        var wake = min(nextHeartbeat, quorumCheckAt)
        if transferTarget != nil { wake = min(wake, transferDeadline) }
        return wake
    }

    mutating func finish(_ directives: [RaftDirective], now: Duration) -> [RaftDirective] {
        var out = directives
        if commitIndex > appliedIndex {
            out.append(.apply(Array(entries(from: appliedIndex + 1, through: commitIndex))))
            appliedIndex = commitIndex
        }
        out.append(.scheduleTick(at: nextWakeUp()))
        return out
    }
}
