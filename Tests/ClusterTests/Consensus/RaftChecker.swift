@testable import Cluster

/// The invariants of `RaftInstance`, checked incrementally as a simulation runs:
/// - election safety: at most one leader per term;
/// - log matching: an (index, term) pair always names the same entry with the same predecessor
///   term, so logs that share it share the whole prefix (checked on the entries each replica
///   still holds, whatever it compacted);
/// - leader completeness: a new leader holds every entry committed so far, in its log or, for
///   the entries its snapshot covers, in the snapshot (whose last entry must be the committed one);
/// - state-machine safety: every replica applies the same entry at each index, in order, and
///   every checkpoint, snapshot sent or state machine restored is exactly the committed prefix,
///   with the term and voters of its last entry in its metadata;
/// - no acknowledged proposal lost: what was acknowledged stays committed at its index, and is
///   in the log or the checkpoint of the leader after the faults heal (`checkAcknowledged`).
struct RaftChecker {
    struct Key: Hashable {
        var index: RaftIndex
        var term: RaftTerm
    }

    /// What the first replica to persist an (index, term) held there.
    struct Known {
        var body: RaftEntry.Body
        var prevTerm: RaftTerm
    }

    /// A proposal accepted at some index, waiting to be applied there.
    struct Pending {
        var term: RaftTerm
        var value: UInt64
    }

    struct Acknowledged {
        var value: UInt64
        var index: RaftIndex
        var term: RaftTerm
    }

    /// The command the simulation proposes for `value`.
    static func command(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    /// The group's founding voters: the configuration before any configuration entry.
    let founders: Set<NodeID>
    private(set) var violation: String?
    private(set) var leaders: [RaftTerm: Int] = [:]
    /// The committed prefix as applied by the replicas: `committed[i]` has index `i + 1`.
    private(set) var committed: [RaftEntry] = []
    private(set) var acknowledged: [Acknowledged] = []
    private(set) var proposals = 0
    private var entries: [Key: Known] = [:]
    private var appliedCount: [Int: Int] = [:]
    private var pending: [Int: [RaftIndex: Pending]] = [:]

    init(founders: Set<NodeID>) {
        self.founders = founders
    }

    mutating func fail(_ message: String) {
        if violation == nil { violation = message }
    }

    mutating func afterStep(replica: Int, instance: RaftInstance, directives: [RaftDirective]) {
        if instance.role == .leader {
            if let existing = leaders[instance.term] {
                if existing != replica {
                    fail("election safety: r\(existing) and r\(replica) lead term \(instance.term)")
                }
            } else {
                leaders[instance.term] = replica
                checkComplete(instance, replica: replica)
            }
        }
        for case .persist(let persist) in directives {
            for entry in persist.entries {
                guard instance.entry(at: entry.index) == entry else { continue }
                let prevTerm = instance.term(at: entry.index - 1) ?? 0
                let key = Key(index: entry.index, term: entry.term)
                if let known = entries[key] {
                    if known.body != entry.body || known.prevTerm != prevTerm {
                        fail("log matching: r\(replica) holds a different entry \(entry.index) of term \(entry.term)")
                    }
                } else {
                    entries[key] = Known(body: entry.body, prevTerm: prevTerm)
                }
            }
        }
        if instance.commitIndex > instance.lastIndex {
            fail("r\(replica) commit index \(instance.commitIndex) beyond its log \(instance.lastIndex)")
        }
        if instance.snapshotIndex > instance.commitIndex {
            fail("r\(replica) snapshot \(instance.snapshotIndex) beyond its commit index \(instance.commitIndex)")
        }
    }

    /// Leader completeness for a new leader: the committed entries its snapshot covers end with
    /// the snapshot's entry, and every later committed entry is in its log.
    private mutating func checkComplete(_ leader: RaftInstance, replica: Int) {
        let covered = min(Int(leader.snapshotIndex), committed.count)
        if covered > 0 && committed[covered - 1].term != (leader.term(at: RaftIndex(covered)) ?? 0) {
            fail(
                "leader completeness: r\(replica) leads term \(leader.term) with a snapshot that lost entry \(covered)")
            return
        }
        for entry in committed[covered...] where leader.entry(at: entry.index) != entry {
            fail("leader completeness: r\(replica) leads term \(leader.term) without committed entry \(entry.index)")
            return
        }
    }

    mutating func applied(replica: Int, entries: [RaftEntry]) {
        for entry in entries {
            let count = appliedCount[replica, default: 0]
            guard entry.index == RaftIndex(count + 1) else {
                fail("r\(replica) applied \(entry.index) after \(count)")
                return
            }
            appliedCount[replica] = count + 1
            record(entry, at: count, by: "r\(replica) applied")
            if let proposal = pending[replica]?.removeValue(forKey: entry.index), proposal.term == entry.term {
                acknowledged.append(Acknowledged(value: proposal.value, index: entry.index, term: entry.term))
            }
        }
    }

    /// Checks `entry` against the committed prefix at position `offset`, extending it at its end.
    private mutating func record(_ entry: RaftEntry, at offset: Int, by what: @autoclosure () -> String) {
        if offset < committed.count {
            if committed[offset] != entry {
                fail("state-machine safety: \(what()) \(entry) where \(committed[offset]) was applied")
            }
        } else if offset == committed.count {
            committed.append(entry)
        } else {
            fail("\(what()) entry \(entry.index) beyond the committed prefix of \(committed.count)")
        }
    }

    /// A checkpoint or snapshot must be the committed prefix through `meta.index`, and `meta` must
    /// name its last entry's term and the voters in effect there.
    mutating func checkSnapshot(_ state: [RaftEntry], meta: RaftSnapshotMeta, at what: String) {
        guard state.count == Int(meta.index), state.last?.term == meta.term else {
            fail("\(what): state of \(state.count) entries does not end at \(meta.index)/\(meta.term)")
            return
        }
        for (offset, entry) in state.enumerated() {
            guard entry.index == RaftIndex(offset + 1) else {
                fail("\(what): entry \(entry.index) at position \(offset + 1)")
                return
            }
            record(entry, at: offset, by: what)
        }
        var voters = founders
        for case .configuration(let set) in state.lazy.map(\.body) { voters = set }
        if voters != meta.voters {
            fail("\(what): metadata voters \(meta.voters.sorted()) but \(voters.sorted()) in effect")
        }
    }

    mutating func crashed(replica: Int) {
        appliedCount[replica] = 0
        pending[replica] = nil
    }

    /// The replica's state machine was replaced by a checkpoint (a restart or an installed
    /// snapshot): it must be the committed prefix; proposals it covers are acknowledged when it
    /// holds them at the index and term they were accepted at.
    mutating func restored(replica: Int, state: [RaftEntry]) {
        for (offset, entry) in state.enumerated() { record(entry, at: offset, by: "r\(replica) restored") }
        appliedCount[replica] = state.count
        for (index, proposal) in (pending[replica] ?? [:]).sorted(by: { $0.key < $1.key })
        where index <= RaftIndex(state.count) {
            pending[replica]?[index] = nil
            let entry = state[Int(index) - 1]
            if entry.term == proposal.term && entry.body == .command(Self.command(proposal.value)) {
                acknowledged.append(Acknowledged(value: proposal.value, index: index, term: proposal.term))
            }
        }
    }

    mutating func proposed(_ value: UInt64, replica: Int, index: RaftIndex, term: RaftTerm) {
        proposals += 1
        pending[replica, default: [:]][index] = Pending(term: term, value: value)
    }

    /// Every acknowledged proposal must be in `leader`'s log at its index and term, or in its
    /// checkpoint `checkpoint` when the log was compacted past it.
    mutating func checkAcknowledged(in leader: RaftInstance, checkpoint: [RaftEntry]) {
        for ack in acknowledged {
            let expected = RaftEntry(term: ack.term, index: ack.index, body: .command(Self.command(ack.value)))
            let held =
                ack.index <= leader.snapshotIndex
                ? (ack.index <= RaftIndex(checkpoint.count) ? checkpoint[Int(ack.index) - 1] : nil)
                : leader.entry(at: ack.index)
            guard held == expected else {
                fail("acknowledged proposal \(ack.value) at \(ack.index) missing from leader \(leader.id)")
                return
            }
        }
    }
}
