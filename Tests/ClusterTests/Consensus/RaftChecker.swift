@testable import Cluster

/// The invariants of `RaftInstance`, checked incrementally as a simulation runs:
/// - election safety: at most one leader per term;
/// - log matching: an (index, term) pair always names the same entry with the same predecessor
///   term, so logs that share it share the whole prefix;
/// - leader completeness: a new leader's log holds every entry committed so far;
/// - state-machine safety: every replica applies the same entry at each index, in order;
/// - no acknowledged proposal lost: what was acknowledged stays committed at its index, and is
///   in the log of the leader after the faults heal (`checkAcknowledged(in:)`).
struct RaftChecker {
    struct Key: Hashable {
        var index: RaftIndex
        var term: RaftTerm
    }

    struct Acknowledged {
        var value: UInt64
        var index: RaftIndex
        var term: RaftTerm
    }

    private(set) var violation: String?
    private(set) var leaders: [RaftTerm: Int] = [:]
    private(set) var committed: [RaftEntry] = []
    private(set) var acknowledged: [Acknowledged] = []
    private(set) var proposals = 0
    private var entries: [Key: (body: RaftEntry.Body, prevTerm: RaftTerm)] = [:]
    private var appliedCount: [Int: Int] = [:]
    private var pending: [Int: [RaftIndex: (term: RaftTerm, value: UInt64)]] = [:]

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
                for entry in committed
                where entry.index > instance.lastIndex || instance.log[Int(entry.index) - 1] != entry {
                    fail(
                        "leader completeness: r\(replica) leads term \(instance.term) without committed entry \(entry.index)"
                    )
                    break
                }
            }
        }
        for case .persist(let persist) in directives {
            for entry in persist.entries {
                guard entry.index <= instance.lastIndex, instance.log[Int(entry.index) - 1] == entry else { continue }
                let prevTerm = instance.term(at: entry.index - 1) ?? 0
                let key = Key(index: entry.index, term: entry.term)
                if let known = entries[key] {
                    if known.body != entry.body || known.prevTerm != prevTerm {
                        fail("log matching: r\(replica) holds a different entry \(entry.index) of term \(entry.term)")
                    }
                } else {
                    entries[key] = (entry.body, prevTerm)
                }
            }
        }
        if instance.commitIndex > instance.lastIndex {
            fail("r\(replica) commit index \(instance.commitIndex) beyond its log \(instance.lastIndex)")
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
            if count < committed.count {
                if committed[count] != entry {
                    fail("state-machine safety: r\(replica) applied \(entry) where \(committed[count]) was applied")
                }
            } else {
                committed.append(entry)
            }
            if let proposal = pending[replica]?.removeValue(forKey: entry.index), proposal.term == entry.term {
                acknowledged.append(Acknowledged(value: proposal.value, index: entry.index, term: entry.term))
            }
        }
    }

    mutating func crashed(replica: Int) {
        appliedCount[replica] = 0
        pending[replica] = nil
    }

    mutating func proposed(_ value: UInt64, replica: Int, index: RaftIndex, term: RaftTerm) {
        proposals += 1
        pending[replica, default: [:]][index] = (term, value)
    }

    /// Every acknowledged proposal must be in `leader`'s log at its index and term.
    mutating func checkAcknowledged(in leader: RaftInstance) {
        for ack in acknowledged {
            let bytes = withUnsafeBytes(of: ack.value.littleEndian) { Array($0) }
            let expected = RaftEntry(term: ack.term, index: ack.index, body: .command(bytes))
            guard ack.index <= leader.lastIndex, leader.log[Int(ack.index) - 1] == expected else {
                fail("acknowledged proposal \(ack.value) at \(ack.index) missing from leader \(leader.id)")
                return
            }
        }
    }
}
