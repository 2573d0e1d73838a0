// Log compaction and snapshot transfer.
//
// Invariants:
// - Everything a snapshot covers is committed: a replica compacts only through its applied
//   index, and installs a snapshot only from a leader of its current term, whose snapshot covers
//   only entries that leader has applied.
// - `snapshotIndex <= commitIndex == appliedIndex` after every event, so `apply` never needs an
//   entry that was compacted away.
// - A follower acknowledges a snapshot (success at `meta.index`) only behind the persist that
//   makes it its durable snapshot, as for entries.
extension RaftInstance {
    /// The metadata a checkpoint of the state machine at `index` must be stored with: the term of
    /// the entry at `index` and the voters in effect there.
    /// - Returns: `nil` unless `snapshotIndex <= index <= appliedIndex`, and `nil` where this
    ///   replica does not know the voters: it was created without the initial voters (it joined
    ///   later) and holds no configuration entry or snapshot at or before `index`.
    public func snapshotMeta(at index: RaftIndex) -> RaftSnapshotMeta? {
        guard index >= snapshotIndex, index <= appliedIndex, let term = term(at: index) else { return nil }
        let voters = configuration(through: index).voters
        guard !voters.isEmpty else { return nil }  // a configuration is never empty
        return RaftSnapshotMeta(index: index, term: term, voters: voters)
    }

    /// Forgets the entries through `index`, once the shell has made a checkpoint of its state
    /// machine at `index` durable together with `snapshotMeta(at: index)`. Emits nothing: the
    /// shell deletes the stored entries at or below `index` itself (after the checkpoint is
    /// durable; entries left behind by a crash in between are ignored on restart).
    ///
    /// An index at or below the current snapshot is ignored (a snapshot installed meanwhile may
    /// have overtaken the checkpoint), and so is one where `snapshotMeta(at:)` is `nil`; one
    /// above `appliedIndex` is a programming error.
    public mutating func compact(through index: RaftIndex) {
        precondition(index <= appliedIndex, "compaction past the applied index \(appliedIndex)")
        guard index > snapshotIndex, let meta = snapshotMeta(at: index) else { return }
        log.removeFirst(Int(index - snapshotIndex))
        snapshot = meta
    }

    /// Installs a snapshot that the shell received in full from `leader`, sent in `term`, and
    /// stored as pending (not yet as its snapshot).
    ///
    /// - A stale `term` is refused with an answer that makes the stale leader step down; a newer
    ///   one is adopted, as for an append.
    /// - A snapshot at or below `commitIndex` is not needed (`accepted` is false); the answer is
    ///   a success at `commitIndex` so that the leader moves on.
    /// - Otherwise (`accepted` is true) the log keeps the entries after `meta.index` when it holds
    ///   the entry at `meta.index` with `meta.term`, and is emptied otherwise; commit and applied
    ///   indices become `meta.index`, the voters those of `meta` or of a configuration entry kept
    ///   after it. The directives hold a `.persist` whose `snapshot` is `meta` (and whose
    ///   `truncateFrom` is `meta.index + 1` when the log was emptied), after the persist of a newly
    ///   adopted term if any; the success answer at `meta.index` follows it.
    ///
    /// The shell replaces its state machine with the snapshot only when the snapshot is accepted,
    /// and only once that persist is durable (see `RaftPersist.snapshot`); a snapshot that is not
    /// accepted is discarded.
    /// - Returns: whether the snapshot was accepted, and the directives to execute.
    public mutating func installSnapshot(
        _ meta: RaftSnapshotMeta, leader sender: NodeID, term senderTerm: RaftTerm, now: Duration
    ) -> (accepted: Bool, [RaftDirective]) {
        var out: [RaftDirective] = []
        guard sender != id else { return (false, finish(out, now: now)) }
        guard senderTerm >= term else {
            send(.appendResponse(success: false, index: lastIndex, rejectedPrev: 0), to: sender, into: &out)
            return (false, finish(out, now: now))
        }
        // Only a leader sends snapshots, and there is at most one per term.
        guard senderTerm > term || role != .leader else { return (false, finish(out, now: now)) }
        if senderTerm > term || role != .follower || leader != sender {
            becomeFollower(term: senderTerm, leader: sender, now: now, into: &out)
        }
        lastLeaderContact = now
        resetElectionDeadline(now: now)
        guard meta.index > commitIndex else {
            send(.appendResponse(success: true, index: commitIndex, rejectedPrev: 0), to: sender, into: &out)
            return (false, finish(out, now: now))
        }
        var persist = RaftPersist(snapshot: meta)
        if term(at: meta.index) == meta.term {
            log.removeFirst(Int(meta.index - snapshotIndex))
        } else {
            log = []
            persist.truncateFrom = meta.index + 1
        }
        snapshot = meta
        commitIndex = meta.index
        appliedIndex = meta.index
        recomputeConfiguration()
        out.append(.persist(persist))
        send(.appendResponse(success: true, index: meta.index, rejectedPrev: 0), to: sender, into: &out)
        return (true, finish(out, now: now))
    }

    /// Sends the latest snapshot to a follower that needs compacted entries, and marks it as
    /// snapshotting until a success at or above the snapshot's index.
    mutating func sendSnapshot(to peer: NodeID, now: Duration, into out: inout [RaftDirective]) {
        guard let snapshot, progress[peer] != nil else { return }
        progress[peer]?.snapshot = SnapshotInFlight(index: snapshot.index, sentAt: now)
        out.append(.sendSnapshot(to: peer, snapshot, term: term))
    }
}
