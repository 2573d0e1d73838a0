/// What one node knows about one other member.
struct MemberRecord: Sendable {
    var member: Member
    var lastHeard: Duration?
    /// When `member.status` last changed (start of suspicion, time of death, time of leave).
    var statusSince: Duration
    /// Distinct nodes that independently suspect the member at its current incarnation.
    var confirmers: Set<NodeID> = []
}

/// The probe of the current protocol period.
struct ProbeState: Sendable {
    var sequence: UInt64
    var target: NodeID
    var directDeadline: Duration
    var indirectDeadline: Duration
    var indirectSent = false
    var expectedNacks = 0
    var nackers: Set<NodeID> = []
}

/// A `pingReq` this node is serving for another node.
struct Relay: Sendable {
    var requester: Peer
    var requesterSequence: UInt64
    var deadline: Duration
}

extension SWIMInstance {
    /// Next member in randomized round-robin order (SWIM §4.3): the live members are shuffled,
    /// probed in turn, and reshuffled when the list is exhausted; new members are inserted at a
    /// random position. Every live member is probed at least once every `2(n−1)−1` periods.
    mutating func nextProbeTarget() -> NodeID? {
        for pass in 0..<2 {
            while probeCursor < probeOrder.count {
                let id = probeOrder[probeCursor]
                probeCursor += 1
                if let record = records[id], record.member.status.isLive { return id }
            }
            guard pass == 0 else { break }
            probeOrder = sortedIDs.filter { records[$0]?.member.status.isLive == true }
            probeOrder.shuffle(using: &rng)
            probeCursor = 0
        }
        return nil
    }

    /// Puts a newly learned member at a random position among the members not yet probed this round.
    mutating func insertIntoProbeOrder(_ id: NodeID) {
        let position = Int.random(in: probeCursor...probeOrder.count, using: &rng)
        probeOrder.insert(id, at: position)
    }

    mutating func startProbe(now: Duration, into out: inout [SWIMDirective]) {
        if probe != nil { finishFailedProbe(now: now, into: &out) }
        guard let target = nextProbeTarget(), let record = records[target] else { return }
        let timeout = settings.probeTimeout * healthScale
        let sequence = nextSequence()
        probe = ProbeState(
            sequence: sequence,
            target: target,
            directDeadline: now + timeout,
            indirectDeadline: now + timeout * 2
        )
        send(.ping(sequence: sequence), to: record.member.peer, into: &out)
    }

    mutating func handleProbeDeadlines(now: Duration, into out: inout [SWIMDirective]) {
        guard let current = probe else { return }
        if now >= current.indirectDeadline {
            finishFailedProbe(now: now, into: &out)
            return
        }
        guard !current.indirectSent, now >= current.directDeadline else { return }
        probe?.indirectSent = true
        guard let target = records[current.target]?.member.peer else { return }
        let helpers = randomLiveMembers(count: settings.indirectProbeCount, excluding: [current.target])
        probe?.expectedNacks = helpers.count
        for helper in helpers {
            send(.pingReq(sequence: current.sequence, target: target), to: helper, into: &out)
        }
    }

    /// No ack arrived, directly or through a helper, before the indirect deadline: suspect the
    /// target. Missing nacks mean this node's own links are bad (Lifeguard LHM).
    mutating func finishFailedProbe(now: Duration, into out: inout [SWIMDirective]) {
        guard let failed = probe else { return }
        probe = nil
        if failed.expectedNacks > 0 {
            adjustHealth(by: failed.expectedNacks - failed.nackers.count)
        } else {
            adjustHealth(by: 1)
        }
        guard let record = records[failed.target], record.member.status.isLive else { return }
        var update = MemberUpdate(record.member, source: myself.id)
        update.status = .suspect
        apply(update, now: now, into: &out)
        // Tell the suspect at once: if it is alive and only unlucky, it refutes before anyone's
        // timer runs out.
        let notice = SWIMMessage(sender: myself.peer, payload: .gossip, gossip: [update])
        out.append(.send(notice, to: record.member.address))
        // Helpers that could not reach the target either are independent confirmations.
        if records[failed.target]?.member.status == .suspect {
            records[failed.target]?.confirmers.formUnion(failed.nackers.union([myself.id]))
        }
    }

    mutating func handleAck(sequence: UInt64, from sender: Peer, now: Duration, into out: inout [SWIMDirective]) {
        if let current = probe, current.sequence == sequence {
            probe = nil
            adjustHealth(by: -1)
            records[current.target]?.lastHeard = now
        } else if let relay = relays.removeValue(forKey: sequence) {
            send(.ack(sequence: relay.requesterSequence), to: relay.requester, into: &out)
        }
    }

    mutating func relayProbe(
        sequence: UInt64,
        target: Peer,
        requester: Peer,
        now: Duration,
        into out: inout [SWIMDirective]
    ) {
        let relaySequence = nextSequence()
        let wait = settings.probeTimeout.scaled(by: settings.nackFraction)
        relays[relaySequence] = Relay(requester: requester, requesterSequence: sequence, deadline: now + wait)
        send(.ping(sequence: relaySequence), to: target, into: &out)
    }

    mutating func handleRelayDeadlines(now: Duration, into out: inout [SWIMDirective]) {
        let expired = relays.filter { $0.value.deadline <= now }.keys.sorted()
        for key in expired {
            guard let relay = relays.removeValue(forKey: key) else { continue }
            send(.nack(sequence: relay.requesterSequence), to: relay.requester, into: &out)
        }
    }

    /// Up to `count` distinct live members other than `myself` and `excluded`, chosen at random.
    mutating func randomLiveMembers(count: Int, excluding excluded: Set<NodeID> = []) -> [Peer] {
        guard count > 0 else { return [] }
        var candidates = sortedIDs.filter { id in
            !excluded.contains(id) && records[id]?.member.status.isLive == true
        }
        var chosen: [Peer] = []
        while chosen.count < count, !candidates.isEmpty {
            let index = Int.random(in: 0..<candidates.count, using: &rng)
            candidates.swapAt(index, candidates.count - 1)
            let id = candidates.removeLast()
            if let peer = records[id]?.member.peer { chosen.append(peer) }
        }
        return chosen
    }

    /// Sends `payload` to `peer` with as many pending updates as fit. When the receiver is a
    /// suspect, the suspicion itself rides first (Lifeguard buddy system) so it can refute at once.
    mutating func send(_ payload: SWIMMessage.Payload, to peer: Peer, into out: inout [SWIMDirective]) {
        var gossip = gossipQueue.take(
            maxCount: settings.maxPiggyback,
            limit: settings.retransmitLimit(memberCount: liveCount)
        )
        if let record = records[peer.id], record.member.status == .suspect,
            !gossip.contains(where: { $0.id == peer.id })
        {
            gossip.insert(MemberUpdate(record.member, source: myself.id), at: 0)
        }
        out.append(.send(SWIMMessage(sender: myself.peer, payload: payload, gossip: gossip), to: peer.address))
    }
}
