// Pre-vote, elections, check-quorum and leadership transfer.
extension RaftInstance {
    /// Asks the voters whether this replica could win at `term + 1`, without raising the term.
    mutating func campaignPreVote(now: Duration, into out: inout [RaftDirective]) {
        role = .preCandidate
        leader = nil
        votes = [id: true]
        if votes.count >= quorum {
            campaign(transfer: false, now: now, into: &out)
            return
        }
        let request = RaftMessage(
            from: id, term: term + 1, payload: .preVote(lastIndex: lastIndex, lastTerm: lastTerm))
        for voter in voters.sorted() where voter != id { out.append(.send(request, to: voter)) }
    }

    /// Raises the term, votes for itself (durably, before asking anyone) and asks for votes.
    mutating func campaign(transfer: Bool, now: Duration, into out: inout [RaftDirective]) {
        term += 1
        votedFor = id
        role = .candidate
        leader = nil
        votes = [id: true]
        progress = [:]
        resetElectionDeadline(now: now)
        out.append(.persist(RaftPersist(term: term, votedFor: id)))
        if votes.count >= quorum {
            becomeLeader(now: now, into: &out)
            return
        }
        let payload = RaftMessage.Payload.requestVote(lastIndex: lastIndex, lastTerm: lastTerm, transfer: transfer)
        for voter in voters.sorted() where voter != id { send(payload, to: voter, into: &out) }
    }

    mutating func onPreVoteResponse(
        from peer: NodeID, term responseTerm: RaftTerm, granted: Bool, now: Duration, into out: inout [RaftDirective]
    ) {
        guard role == .preCandidate, voters.contains(peer) else { return }
        if granted {
            guard responseTerm == term + 1 else { return }
            votes[peer] = true
        } else {
            votes[peer] = false
        }
        switch tally() {
        case .won: campaign(transfer: false, now: now, into: &out)
        case .lost: becomeFollower(term: term, leader: nil, now: now, into: &out)
        case .pending: break
        }
    }

    mutating func onRequestVote(
        from candidate: NodeID, lastIndex: RaftIndex, lastTerm: RaftTerm, now: Duration,
        into out: inout [RaftDirective]
    ) {
        let granted =
            (votedFor == nil || votedFor == candidate) && role == .follower
            && isUpToDate(lastIndex: lastIndex, lastTerm: lastTerm)
        if granted && votedFor == nil {
            votedFor = candidate
            out.append(.persist(RaftPersist(term: term, votedFor: candidate)))
        }
        if granted { resetElectionDeadline(now: now) }
        send(.voteResponse(granted: granted), to: candidate, into: &out)
    }

    mutating func onVoteResponse(from peer: NodeID, granted: Bool, now: Duration, into out: inout [RaftDirective]) {
        guard role == .candidate, voters.contains(peer) else { return }
        votes[peer] = granted
        switch tally() {
        case .won: becomeLeader(now: now, into: &out)
        case .lost: becomeFollower(term: term, leader: nil, now: now, into: &out)
        case .pending: break
        }
    }

    enum Tally { case won, lost, pending }

    func tally() -> Tally {
        let yes = voters.filter { votes[$0] == true }.count
        let no = voters.filter { votes[$0] == false }.count
        if yes >= quorum { return .won }
        if no >= quorum { return .lost }
        return .pending
    }

    /// Takes over: a progress record per follower, a no-op entry of the new term (so that the
    /// leader can commit, Raft §5.4.2), and an immediate append to everyone.
    mutating func becomeLeader(now: Duration, into out: inout [RaftDirective]) {
        isQuiescent = false
        role = .leader
        leader = id
        votes = [:]
        transferTarget = nil
        progress = [:]
        lastHeard = [:]
        refreshProgress(now: now)
        quorumCheckAt = now + settings.electionTimeout
        nextHeartbeat = now + settings.heartbeatInterval
        appendLocal(.noop, now: now, into: &out)
    }

    /// Check-quorum: whether a majority (counting this replica when it votes) was heard from
    /// within the last election timeout.
    func hasRecentQuorum(now: Duration) -> Bool {
        var heard = isVoter ? 1 : 0
        for voter in voters where voter != id {
            if let at = lastHeard[voter], now - at < settings.electionTimeout { heard += 1 }
        }
        return heard >= quorum
    }

    /// Whether a leadership transfer is in progress (proposals are refused meanwhile).
    public var isTransferringLeadership: Bool { transferTarget != nil }

    /// Whether this leader knows `peer`'s log to match its whole log.
    public func hasCaughtUp(_ peer: NodeID) -> Bool {
        role == .leader && progress[peer]?.match == lastIndex
    }

    /// Hands leadership to `target`: once its log matches, it is told to start an election at
    /// once. Proposals are refused meanwhile; the attempt is dropped after an election timeout.
    /// - Returns: whether the transfer started (this replica leads and `target` is another voter).
    public mutating func transferLeadership(to target: NodeID, now: Duration) -> (Bool, [RaftDirective]) {
        var out: [RaftDirective] = []
        guard role == .leader, target != id, voters.contains(target), let peer = progress[target] else {
            return (false, finish(out, now: now))
        }
        unquiesce(now: now)
        transferTarget = target
        transferDeadline = now + settings.electionTimeout
        if peer.match == lastIndex {
            send(.timeoutNow, to: target, into: &out)
        } else {
            sendAppend(to: target, now: now, into: &out)
        }
        return (true, finish(out, now: now))
    }
}
