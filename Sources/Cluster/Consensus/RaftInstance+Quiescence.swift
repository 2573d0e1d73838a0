// Quiescence: an idle group stops heart-beating.
//
// A thousand groups per node that each send a heartbeat to every follower several times a second
// cost a node a core while nothing happens. When a leader's group is idle (everything committed,
// every follower known to hold the whole log, no configuration change or transfer in progress), it
// sends a last `quiesce` message with its log's end and commit index, and stops sending and checking
// its quorum. A follower whose log ends exactly there applies the commit index and stops its
// election timer. Anything wakes the group: a proposal, a configuration change or a transfer on the
// leader, any message a quiescent replica receives, or the shell's ``wake(now:)``.
//
// Failure detection for quiet groups comes from outside: the shell calls `wake` on a follower when
// its membership view suspects the leader's node (and on a leader when it suspects a voter), which
// ends the follower's trust in the leader so that its timer can start an election. A quiescent
// follower woken by another replica's (pre-)vote request still trusts its leader for one election
// timeout, so a replica that was cut off cannot disrupt a quiet, healthy group; if the leader really
// is gone (restarted without its leadership), the follower's own timer then elects a new one. A
// live leader woken by such a request goes quiet again with a `quiesce`, which names it as the
// term's leader to a replica that forgot it (`onMessage`), so a false suspicion ends there.
//
// Safety does not depend on any of this: a quiescent leader commits nothing without a majority's
// acknowledgements, and reads go through the log.
extension RaftInstance {
    /// Whether the leader may go quiet now.
    var canQuiesce: Bool {
        guard settings.quiesceWhenIdle, role == .leader, transferTarget == nil, commitIndex == lastIndex,
            configurationIndex <= commitIndex, !progress.isEmpty || voters == [id]
        else { return false }
        return progress.values.allSatisfy { $0.match == lastIndex }
    }

    /// Tells every follower that the group goes quiet, and stops heart-beating.
    mutating func quiesce(into out: inout [RaftDirective]) {
        isQuiescent = true
        let payload = RaftMessage.Payload.quiesce(lastIndex: lastIndex, lastTerm: lastTerm, commit: commitIndex)
        for peer in progress.keys.sorted() { send(payload, to: peer, into: &out) }
    }

    /// A follower's side of `quiesce`: goes quiet only when its log ends where the leader's does.
    mutating func onQuiesce(
        from sender: NodeID, lastIndex end: RaftIndex, lastTerm endTerm: RaftTerm, commit: RaftIndex
    ) {
        guard settings.quiesceWhenIdle, role == .follower, leader == sender, lastIndex == end, lastTerm == endTerm
        else { return }
        commitIndex = max(commitIndex, min(commit, lastIndex))
        isQuiescent = true
    }

    /// Ends quiescence after an event: a leader resumes heartbeats and its quorum check with every
    /// follower counted as just heard from; a follower restarts its election timer and keeps
    /// trusting its leader for one election timeout.
    mutating func unquiesce(now: Duration) {
        guard isQuiescent else { return }
        isQuiescent = false
        if role == .leader {
            nextHeartbeat = now
            quorumCheckAt = now + settings.electionTimeout
            for peer in progress.keys { lastHeard[peer] = now }
        } else {
            lastLeaderContact = now
            resetElectionDeadline(now: now)
        }
    }

    /// The shell's failure detector suspects a node this replica depends on (its leader, or as a
    /// leader one of its voters): the group wakes up, and a follower forgets its leader (it no
    /// longer trusts it, and stops naming it to requests), so that an election can start once its
    /// timer fires; the next append from a live leader makes it known again.
    public mutating func wake(now: Duration) -> [RaftDirective] {
        let wasQuiescent = isQuiescent
        unquiesce(now: now)
        if wasQuiescent && role != .leader {
            lastLeaderContact = nil
            leader = nil
        }
        return finish([], now: now)
    }
}
