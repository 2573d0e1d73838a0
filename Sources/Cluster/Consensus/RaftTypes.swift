/// A Raft term: a logical epoch with at most one leader.
public typealias RaftTerm = UInt64
/// A position in the Raft log; the first entry is at index 1, index 0 is the empty prefix.
public typealias RaftIndex = UInt64

/// One log entry.
public struct RaftEntry: Hashable, Sendable {
    /// What the entry carries.
    public enum Body: Hashable, Sendable {
        /// Appended by every new leader so that it can commit an entry of its own term.
        case noop
        /// An opaque command for the state machine.
        case command([UInt8])
        /// The complete voter set from this entry on. It takes effect as soon as it is appended
        /// (not when committed) and differs from the previous configuration by one voter at most.
        case configuration(Set<NodeID>)
    }

    /// The term of the leader that created the entry.
    public var term: RaftTerm
    /// The entry's position in the log.
    public var index: RaftIndex
    /// The payload.
    public var body: Body

    /// Creates an entry.
    public init(term: RaftTerm, index: RaftIndex, body: Body) {
        self.term = term
        self.index = index
        self.body = body
    }
}

/// What a snapshot (a checkpoint of the state machine) covers: the last entry applied to it and
/// the configuration in effect at that entry. Entries up to `index` are committed.
public struct RaftSnapshotMeta: Hashable, Sendable {
    /// The index of the last entry the snapshot covers.
    public var index: RaftIndex
    /// The term of the entry at `index`.
    public var term: RaftTerm
    /// The voters in effect at `index`: those of the last configuration entry at or before it, or
    /// the bootstrap voters when there was none.
    public var voters: Set<NodeID>

    /// Creates snapshot metadata.
    public init(index: RaftIndex, term: RaftTerm, voters: Set<NodeID>) {
        self.index = index
        self.term = term
        self.voters = voters
    }
}

/// What must survive a crash: the current term, the vote cast in it, the metadata of the latest
/// durable snapshot, and the log after it.
public struct RaftDurableState: Hashable, Sendable {
    /// The latest term this node has seen.
    public var term: RaftTerm
    /// The candidate this node voted for in `term`, if any.
    public var votedFor: NodeID?
    /// The metadata of the checkpoint the state machine is restored from (`nil`: none, the log
    /// starts at index 1).
    public var snapshot: RaftSnapshotMeta?
    /// The log: contiguous entries from `snapshot.index + 1` (from index 1 without a snapshot).
    /// Entries at or below `snapshot.index` (left by a crash between writing a checkpoint and
    /// deleting the entries it covers) are ignored.
    public var log: [RaftEntry]

    /// Creates a durable state; the default is a node that never ran.
    public init(
        term: RaftTerm = 0, votedFor: NodeID? = nil, snapshot: RaftSnapshotMeta? = nil, log: [RaftEntry] = []
    ) {
        self.term = term
        self.votedFor = votedFor
        self.snapshot = snapshot
        self.log = log
    }
}

/// A change to write to stable storage, in order, before anything that follows it becomes
/// visible outside the node (see `RaftDirective.persist`).
public struct RaftPersist: Hashable, Sendable {
    /// The new term and vote, when they changed.
    public var term: RaftTerm?
    /// Set together with `term`: the vote in that term (`nil` = no vote cast).
    public var votedFor: NodeID?
    /// Set only by `RaftInstance.installSnapshot`: the snapshot received from the leader (and
    /// stored as pending) becomes this replica's snapshot. In one atomic write, record it as
    /// the durable snapshot and delete every stored entry at or below `snapshot.index`. Once
    /// the write is durable, and not before, replace the state machine with the snapshot's
    /// state; later `.apply` directives continue from `snapshot.index + 1`.
    public var snapshot: RaftSnapshotMeta?
    /// When set, delete every stored entry at this index and above before appending `entries`
    /// (after applying `snapshot`; `snapshot.index + 1` there means the whole log goes).
    public var truncateFrom: RaftIndex?
    /// Entries to append after the (possibly truncated) stored log, contiguous.
    public var entries: [RaftEntry]

    /// Creates a persist record.
    public init(
        term: RaftTerm? = nil, votedFor: NodeID? = nil, snapshot: RaftSnapshotMeta? = nil,
        truncateFrom: RaftIndex? = nil, entries: [RaftEntry] = []
    ) {
        self.term = term
        self.votedFor = votedFor
        self.snapshot = snapshot
        self.truncateFrom = truncateFrom
        self.entries = entries
    }
}

/// A message between the replicas of one group.
public struct RaftMessage: Hashable, Sendable {
    /// The payload kinds.
    public enum Payload: Hashable, Sendable {
        /// "Would you vote for me at `term`?" Sent with the sender's term + 1, which the
        /// sender does not adopt until a majority says yes.
        case preVote(lastIndex: RaftIndex, lastTerm: RaftTerm)
        /// Answer to `preVote`.
        case preVoteResponse(granted: Bool)
        /// A real vote request. `transfer` marks an election started by `timeoutNow`, which
        /// voters grant even while they still hear from the current leader.
        case requestVote(lastIndex: RaftIndex, lastTerm: RaftTerm, transfer: Bool)
        /// Answer to `requestVote`.
        case voteResponse(granted: Bool)
        /// Entries after `prevIndex` (possibly none: a heartbeat) and the leader's commit index.
        case append(prevIndex: RaftIndex, prevTerm: RaftTerm, entries: [RaftEntry], commit: RaftIndex)
        /// Answer to `append`. On success `index` is the highest index known to match the
        /// leader's log; on rejection it is a hint (the follower's last index, at most
        /// `prevIndex - 1`) and `rejectedPrev` echoes the rejected `prevIndex`.
        case appendResponse(success: Bool, index: RaftIndex, rejectedPrev: RaftIndex)
        /// Leadership transfer: "start an election now, without pre-vote".
        case timeoutNow
        /// The leader's group is idle and goes quiet: its log ends at `lastIndex` (of `lastTerm`)
        /// and `commit` is committed. See RaftInstance+Quiescence.swift.
        case quiesce(lastIndex: RaftIndex, lastTerm: RaftTerm, commit: RaftIndex)
    }

    /// The sender.
    public var from: NodeID
    /// The sender's term (for `preVote`, the term it would campaign in).
    public var term: RaftTerm
    /// The payload.
    public var payload: Payload

    /// Creates a message.
    public init(from: NodeID, term: RaftTerm, payload: Payload) {
        self.from = from
        self.term = term
        self.payload = payload
    }
}

/// The answer to a client proposal.
public enum RaftProposalOutcome: Hashable, Sendable {
    /// Appended at `index` in `term`. The proposal is committed, and may be acknowledged to
    /// the client, when this node applies the entry at `index` and it still has `term`.
    case accepted(index: RaftIndex, term: RaftTerm)
    /// Not accepted here; `leader` is the leader this node knows of, if any.
    case notLeader(leader: NodeID?)
    /// The leader cannot take it now (a transfer is in progress, or a configuration change is
    /// still uncommitted); retry later.
    case busy
}

/// What the shell must do, in order.
public enum RaftDirective: Hashable, Sendable {
    /// Make `persist` durable (fsync) before executing any directive that follows it, in this
    /// result or in any later one. Persists are applied in the order they are emitted.
    case persist(RaftPersist)
    /// Send `message` to `to`. Best effort: loss, duplication and reordering are tolerated.
    case send(RaftMessage, to: NodeID)
    /// Send the latest durable snapshot (its state, at `meta.index` or later, with its own
    /// metadata) to `to`, stamped with `term`. Streaming it in chunks is the shell's business;
    /// the receiver calls `RaftInstance.installSnapshot` once it holds all of it. Best effort:
    /// the leader sends it again if no success arrives within an election timeout.
    case sendSnapshot(to: NodeID, RaftSnapshotMeta, term: RaftTerm)
    /// Apply these committed entries, in order, to the state machine. Each entry is applied
    /// exactly once per process lifetime; after a restart application starts again after the
    /// durable snapshot (at index 1 without one), from the state the snapshot holds.
    case apply([RaftEntry])
    /// (Re)arm the shell's single timer to call `RaftInstance.onTick(now:)` at `at`. Replaces
    /// any earlier schedule; every result ends with exactly one of these.
    case scheduleTick(at: Duration)
}

/// The role a replica currently plays.
public enum RaftRole: Hashable, Sendable {
    case follower
    /// Collecting pre-votes; the term has not been raised yet.
    case preCandidate
    case candidate
    case leader
}
