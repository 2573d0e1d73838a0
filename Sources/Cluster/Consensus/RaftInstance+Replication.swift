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
        broadcastAppend(into: &out)
        maybeCommit(into: &out)
        return entry
    }

    mutating func broadcastAppend(into out: inout [RaftDirective]) {
        for peer in progress.keys.sorted() { sendAppend(to: peer, into: &out) }
    }

    /// Sends the entries from the follower's `next` index (at most `maxEntriesPerAppend` entries and
    /// `maxBytesPerAppend` command bytes, at least one entry). To a follower that is replicating,
    /// `next` then moves past them at once (pipelining: the next append does not resend them); a
    /// lost append shows as a rejection of a later one, which falls back to probing.
    mutating func sendAppend(to peer: NodeID, into out: inout [RaftDirective]) {
        guard var state = progress[peer] else { return }
        let prevIndex = state.next - 1
        var end = prevIndex
        var bytes = 0
        while end < lastIndex, end - prevIndex < RaftIndex(settings.maxEntriesPerAppend) {
            let size = log[Int(end)].payloadBytes
            if end > prevIndex && bytes + size > settings.maxBytesPerAppend { break }
            bytes += size
            end += 1
        }
        let entries = Array(log[Int(prevIndex)..<Int(end)])
        let payload = RaftMessage.Payload.append(
            prevIndex: prevIndex, prevTerm: term(at: prevIndex) ?? 0, entries: entries, commit: commitIndex)
        send(payload, to: peer, into: &out)
        if state.replicating && end > prevIndex {
            state.next = end + 1
            progress[peer] = state
        }
    }

    /// The follower side: the consistency check on `prevIndex`/`prevTerm`, truncation of a
    /// conflicting suffix, durable append, then the acknowledgement.
    mutating func onAppend(
        from leader: NodeID, prevIndex: RaftIndex, prevTerm: RaftTerm, entries: [RaftEntry], commit: RaftIndex,
        into out: inout [RaftDirective]
    ) {
        guard let localPrevTerm = term(at: prevIndex), localPrevTerm == prevTerm else {
            let hint = min(prevIndex &- 1, lastIndex)
            send(.appendResponse(success: false, index: hint, rejectedPrev: prevIndex), to: leader, into: &out)
            return
        }
        var firstNew = entries.count
        for (offset, entry) in entries.enumerated() {
            if let existing = term(at: entry.index), existing == entry.term { continue }
            firstNew = offset
            break
        }
        if firstNew < entries.count {
            let start = entries[firstNew].index
            var persist = RaftPersist(entries: Array(entries[firstNew...]))
            var configurationChanged = entries[firstNew...].contains { $0.isConfiguration }
            if start <= lastIndex {
                precondition(start > commitIndex, "a committed entry conflicts with the leader's log")
                configurationChanged = configurationChanged || configurationIndex >= start
                log.removeSubrange(Int(start - 1)...)
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
        from peer: NodeID, success: Bool, index: RaftIndex, rejectedPrev: RaftIndex, into out: inout [RaftDirective]
    ) {
        guard var state = progress[peer] else { return }
        if success {
            guard index <= lastIndex else { return }
            state.match = max(state.match, index)
            state.next = max(state.next, state.match + 1)
            state.replicating = true
            progress[peer] = state
            maybeCommit(into: &out)
            if transferTarget == peer && state.match == lastIndex {
                send(.timeoutNow, to: peer, into: &out)
            }
            if role == .leader && state.next <= lastIndex { sendAppend(to: peer, into: &out) }
        } else {
            // While probing, only the answer to the latest probe moves `next` back; while pipelining,
            // any rejection above the match (an append was lost or reordered) returns to probing.
            // Rejections at or below the match are stale and dropped.
            let current = state.replicating ? rejectedPrev > state.match : rejectedPrev == state.next - 1
            guard current, rejectedPrev > 0 else { return }
            state.next = max(state.match + 1, min(rejectedPrev, index + 1))
            state.replicating = false
            progress[peer] = state
            sendAppend(to: peer, into: &out)
        }
    }

    /// Commits the highest index a majority of voters holds, if its entry is of the current term.
    mutating func maybeCommit(into out: inout [RaftDirective]) {
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
            broadcastAppend(into: &out)
            role = .follower
            leader = nil
            progress = [:]
            transferTarget = nil
        }
    }
}

extension RaftEntry {
    /// The bytes an entry's payload takes in an append (what `maxBytesPerAppend` counts).
    var payloadBytes: Int {
        if case .command(let bytes) = body { return bytes.count }
        return 16
    }

    var isConfiguration: Bool {
        if case .configuration = body { return true }
        return false
    }
}
