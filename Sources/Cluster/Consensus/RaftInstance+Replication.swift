// Log replication: appends, the consistency check, conflict truncation and commitment.
extension RaftInstance {
    /// Appends an entry of the current term to the leader's own log (durably, before anything
    /// that follows) and sends it on.
    @discardableResult
    mutating func appendLocal(_ body: RaftEntry.Body, now: Duration, into out: inout [RaftDirective]) -> RaftEntry {
        let entry = RaftEntry(term: term, index: lastIndex + 1, body: body)
        log.append(entry)
        out.append(.persist(RaftPersist(entries: [entry])))
        if case .configuration = body {
            recomputeConfiguration()
            refreshProgress(now: now)
        }
        broadcastAppend(now: now, into: &out)
        maybeCommit(now: now, into: &out)
        return entry
    }

    mutating func broadcastAppend(now: Duration, into out: inout [RaftDirective]) {
        for peer in progress.keys.sorted() { sendAppend(to: peer, now: now, into: &out) }
    }

    /// Sends the entries from the follower's `next` index (at most `maxEntriesPerAppend` entries and
    /// `maxBytesPerAppend` command bytes, at least one entry), or the snapshot when they were
    /// compacted away. To a follower that is replicating, `next` then moves past the entries at once
    /// (pipelining: the next append does not resend them); a lost append shows as a rejection of a
    /// later one, which falls back to probing. While a snapshot is in flight the follower gets only
    /// a heartbeat at `prevIndex` 0, which every log matches, so it neither rejects nor moves `next`
    /// back; the snapshot is sent again after an election timeout without success.
    mutating func sendAppend(to peer: NodeID, now: Duration, into out: inout [RaftDirective]) {
        guard var state = progress[peer] else { return }
        if let inFlight = state.snapshot, now - inFlight.sentAt < settings.electionTimeout {
            send(.append(prevIndex: 0, prevTerm: 0, entries: [], commit: commitIndex), to: peer, into: &out)
            return
        }
        let prevIndex = state.next - 1
        guard state.snapshot == nil, let prevTerm = term(at: prevIndex) else {
            sendSnapshot(to: peer, now: now, into: &out)
            return
        }
        let window = entries(
            from: prevIndex + 1, through: min(lastIndex, prevIndex + RaftIndex(settings.maxEntriesPerAppend)))
        var taken = 0
        var bytes = 0
        for entry in window {
            let size = entry.payloadBytes
            if taken > 0 && bytes + size > settings.maxBytesPerAppend { break }
            bytes += size
            taken += 1
        }
        let entries = Array(window.prefix(taken))
        send(
            .append(prevIndex: prevIndex, prevTerm: prevTerm, entries: entries, commit: commitIndex), to: peer,
            into: &out)
        if state.replicating && !entries.isEmpty {
            state.next = prevIndex + RaftIndex(entries.count) + 1
            progress[peer] = state
        }
    }

    /// The follower side: the consistency check on `prevIndex`/`prevTerm`, truncation of a
    /// conflicting suffix, durable append, then the acknowledgement.
    mutating func onAppend(
        from leader: NodeID, prevIndex: RaftIndex, prevTerm: RaftTerm, entries: [RaftEntry], commit: RaftIndex,
        into out: inout [RaftDirective]
    ) {
        var prevIndex = prevIndex
        var prevTerm = prevTerm
        var entries = entries[...]
        if prevIndex < snapshotIndex {
            // Entries up to the snapshot are committed and already in it: skip them, and check the
            // rest against the snapshot's last entry. The answer's index is then at least
            // `snapshotIndex`, which the leader's log holds too (it holds every committed entry).
            entries = entries.drop { $0.index <= snapshotIndex }
            prevIndex = snapshotIndex
            prevTerm = snapshotTerm
        }
        guard let localPrevTerm = term(at: prevIndex), localPrevTerm == prevTerm else {
            let hint = min(prevIndex &- 1, lastIndex)
            send(.appendResponse(success: false, index: hint, rejectedPrev: prevIndex), to: leader, into: &out)
            return
        }
        let firstNew = entries.firstIndex { term(at: $0.index) != $0.term } ?? entries.endIndex
        if firstNew < entries.endIndex {
            let start = entries[firstNew].index
            var persist = RaftPersist(entries: Array(entries[firstNew...]))
            var configurationChanged = entries[firstNew...].contains { $0.isConfiguration }
            if start <= lastIndex {
                precondition(start > commitIndex, "a committed entry conflicts with the leader's log")
                configurationChanged = configurationChanged || configurationIndex >= start
                log.removeSubrange(Int(start - firstIndex)...)
                persist.truncateFrom = start
            }
            log.append(contentsOf: entries[firstNew...])
            out.append(.persist(persist))
            if configurationChanged { recomputeConfiguration() }
        }
        let lastNew = prevIndex + RaftIndex(entries.count)
        commitIndex = max(commitIndex, min(commit, lastNew))
        send(.appendResponse(success: true, index: lastNew, rejectedPrev: 0), to: leader, into: &out)
    }

    mutating func onAppendResponse(
        from peer: NodeID, success: Bool, index: RaftIndex, rejectedPrev: RaftIndex, now: Duration,
        into out: inout [RaftDirective]
    ) {
        guard var state = progress[peer] else { return }
        if success {
            guard index <= lastIndex else { return }
            state.match = max(state.match, index)
            state.next = max(state.next, state.match + 1)
            // The snapshot (or something newer) arrived; below it, only a heartbeat was answered.
            if let inFlight = state.snapshot, state.match >= inFlight.index { state.snapshot = nil }
            state.replicating = state.snapshot == nil
            progress[peer] = state
            maybeCommit(now: now, into: &out)
            if transferTarget == peer && state.match == lastIndex {
                send(.timeoutNow, to: peer, into: &out)
            }
            if role == .leader && state.next <= lastIndex && state.snapshot == nil {
                sendAppend(to: peer, now: now, into: &out)
            }
        } else {
            // While probing, only the answer to the latest probe moves `next` back; while pipelining,
            // any rejection above the match (an append was lost or reordered) returns to probing.
            // Rejections at or below the match are stale and dropped, and so is any rejection while
            // a snapshot is in flight.
            let current = state.replicating ? rejectedPrev > state.match : rejectedPrev == state.next - 1
            guard current, rejectedPrev > 0, state.snapshot == nil else { return }
            state.next = max(state.match + 1, min(rejectedPrev, index + 1))
            state.replicating = false
            progress[peer] = state
            sendAppend(to: peer, now: now, into: &out)
        }
    }

    /// Commits the highest index a majority of voters holds, if its entry is of the current term.
    mutating func maybeCommit(now: Duration, into out: inout [RaftDirective]) {
        guard role == .leader else { return }
        var matches: [RaftIndex] = voters.map { $0 == id ? lastIndex : (progress[$0]?.match ?? 0) }
        guard !matches.isEmpty else { return }
        matches.sort(by: >)
        var needed = quorum
        if brokenRule == .commitOnMinority { needed = max(1, needed - 1) }
        let candidate = matches[needed - 1]
        guard candidate > commitIndex, let candidateTerm = term(at: candidate) else { return }
        guard candidateTerm == term || brokenRule == .commitEarlierTerms else { return }
        commitIndex = candidate
        if !isVoter && commitIndex >= configurationIndex {
            // Removed by a committed configuration: tell the others the commit index, then stop leading.
            broadcastAppend(now: now, into: &out)
            role = .follower
            leader = nil
            progress = [:]
            transferTarget = nil
        }
    }
}

extension RaftEntry {
    /// The bytes an entry's payload takes in an append and in memory (what `maxBytesPerAppend` and
    /// a shell's log retention count).
    public var payloadBytes: Int {
        if case .command(let bytes) = body { return bytes.count }
        return 16
    }

    var isConfiguration: Bool {
        if case .configuration = body { return true }
        return false
    }
}
