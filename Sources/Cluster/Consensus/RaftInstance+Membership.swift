// Single-server membership changes.
extension RaftInstance {
    /// Proposes a new voter set that adds or removes exactly one voter. It takes effect on each
    /// replica as soon as that replica appends it.
    /// - Returns: `.busy` while the previous change is uncommitted or the leader has not yet
    ///   committed an entry of its term (both needed for one-at-a-time changes to be safe).
    public mutating func proposeConfiguration(_ newVoters: Set<NodeID>, now: Duration) -> (
        RaftProposalOutcome, [RaftDirective]
    ) {
        var out: [RaftDirective] = []
        guard role == .leader else { return (.notLeader(leader: leader), finish(out, now: now)) }
        precondition(
            !newVoters.isEmpty && newVoters.symmetricDifference(voters).count == 1,
            "a configuration change adds or removes exactly one voter")
        guard transferTarget == nil, configurationIndex <= commitIndex, term(at: commitIndex) == term else {
            return (.busy, finish(out, now: now))
        }
        unquiesce(now: now)
        let entry = appendLocal(.configuration(newVoters), now: now, into: &out)
        return (.accepted(index: entry.index, term: entry.term), finish(out, now: now))
    }

    /// Sets `voters` from the last configuration entry in the log, else the snapshot's voters
    /// (`configurationIndex` is then the snapshot's index), else the bootstrap voters.
    mutating func recomputeConfiguration() {
        (voters, configurationIndex) = configuration(through: lastIndex)
    }

    /// The voters in effect at `index` (at least `snapshotIndex`, at most `lastIndex`) and the
    /// index of the entry that set them.
    func configuration(through index: RaftIndex) -> (voters: Set<NodeID>, index: RaftIndex) {
        for entry in entries(from: firstIndex, through: index).reversed() {
            if case .configuration(let set) = entry.body { return (set, entry.index) }
        }
        if let snapshot { return (snapshot.voters, snapshot.index) }
        return (bootstrapVoters, 0)
    }

    /// Keeps one progress record per other voter (a new voter starts probing at the end of the log).
    mutating func refreshProgress(now: Duration) {
        guard role == .leader else { return }
        for voter in voters where voter != id && progress[voter] == nil {
            progress[voter] = Progress(next: lastIndex + 1)
            lastHeard[voter] = now
        }
        pruneRemovedPeers(now: now)
    }

    /// A replica the configuration no longer holds keeps receiving appends (it is never counted for
    /// commitment or quorum) until it holds the entry that removed it, so that it learns it was
    /// removed and a node that leaves can tell when it is done; or until it has been silent for ten
    /// election timeouts (it is gone).
    mutating func pruneRemovedPeers(now: Duration) {
        for (peer, state) in progress where !voters.contains(peer) {
            let informed = state.match >= configurationIndex
            let silent = lastHeard[peer].map { now - $0 > settings.electionTimeout * 10 } ?? true
            if informed || silent { progress[peer] = nil }
        }
    }
}
