extension SWIMInstance {
    /// Merges one membership update into this node's view.
    ///
    /// The greatest update per member wins (`MemberUpdate.supersedes`), which makes the merge
    /// order-insensitive: views converge once every node has seen the same updates. Updates that
    /// win are queued for further dissemination. Dead or left members this node has never heard
    /// of are ignored, so forgotten tombstones are not revived by a late push-pull.
    mutating func apply(_ update: MemberUpdate, now: Duration, into out: inout [SWIMDirective]) {
        if update.id == myself.id {
            applyAboutMyself(update, into: &out)
            return
        }
        guard var record = records[update.id] else {
            addMember(update, now: now, into: &out)
            return
        }
        if update.supersedes(record.member) {
            let previous = record.member.status
            record.member = update.member
            record.statusSince = now
            record.confirmers = []
            if update.status == .suspect, let source = update.source { record.confirmers.insert(source) }
            records[update.id] = record
            if update.status == .left { everKnown.remove(update.id) } else { everKnown.insert(update.id) }
            if previous.isLive != update.status.isLive { cachedLiveCount = nil }
            refreshTimer(update.id)
            if !update.status.isLive && probe?.target == update.id { probe = nil }
            gossipQueue.enqueue(update)
            out.append(.memberChanged(MemberChange(member: record.member, previousStatus: previous)))
        } else if update.status == .suspect, record.member.status == .suspect,
            update.incarnation == record.member.incarnation, let source = update.source,
            !record.confirmers.contains(source)
        {
            // An independent confirmation of a suspicion we already hold (Lifeguard): it shortens
            // our timeout and is passed on so that others can count it too.
            records[update.id]?.confirmers.insert(source)
            gossipQueue.enqueue(update)
        }
    }

    private mutating func addMember(_ update: MemberUpdate, now: Duration, into out: inout [SWIMDirective]) {
        guard update.status.isLive, !leaving else { return }
        var record = MemberRecord(member: update.member, lastHeard: nil, statusSince: now)
        if update.status == .suspect, let source = update.source { record.confirmers.insert(source) }
        records[update.id] = record
        everKnown.insert(update.id)
        let index = sortedIDs.firstIndex { $0 > update.id } ?? sortedIDs.count
        sortedIDs.insert(update.id, at: index)
        cachedLiveCount = nil
        insertIntoProbeOrder(update.id)
        refreshTimer(update.id)
        gossipQueue.enqueue(update)
        out.append(.memberChanged(MemberChange(member: record.member, previousStatus: nil)))
    }

    /// Someone claims something about this node. A suspicion, death or leave at our current
    /// incarnation (or a record of a previous life with a higher one) is refuted by announcing
    /// `alive` at a higher incarnation. Having to refute raises the local health score (Lifeguard).
    /// The refutation also goes straight to the suspecting node, which holds the shortest timer.
    private mutating func applyAboutMyself(_ update: MemberUpdate, into out: inout [SWIMDirective]) {
        guard !leaving else { return }
        let stale =
            update.status == .alive ? update.incarnation > myself.incarnation : update.incarnation >= myself.incarnation
        guard stale else { return }
        myself.incarnation = update.incarnation + 1
        if update.status != .alive { adjustHealth(by: 1) }
        let refutation = MemberUpdate(myself)
        gossipQueue.enqueue(refutation)
        if let source = update.source, let suspecter = records[source]?.member, suspecter.status.isLive {
            let message = SWIMMessage(sender: myself.peer, payload: .gossip, gossip: [refutation])
            out.append(.send(message, to: suspecter.address))
        }
    }

    mutating func refreshTimer(_ id: NodeID) {
        if let record = records[id], record.member.status != .alive {
            timedMembers.insert(id)
        } else {
            timedMembers.remove(id)
        }
    }

    /// When the member's suspicion times out or its tombstone expires.
    func memberDeadline(_ id: NodeID) -> Duration? {
        guard let record = records[id] else { return nil }
        switch record.member.status {
        case .alive:
            return nil
        case .suspect:
            let timeout = settings.suspicionTimeout(
                memberCount: liveCount,
                confirmations: record.confirmers.count - 1
            )
            return record.statusSince + timeout
        case .dead, .left:
            return record.statusSince + settings.tombstoneTTL
        }
    }

    mutating func handleMemberTimers(now: Duration, into out: inout [SWIMDirective]) {
        guard !timedMembers.isEmpty else { return }
        for id in timedMembers.sorted() {
            guard let record = records[id] else {
                timedMembers.remove(id)
                continue
            }
            guard let deadline = memberDeadline(id), deadline <= now else { continue }
            switch record.member.status {
            case .alive:
                timedMembers.remove(id)
            case .suspect:
                var update = MemberUpdate(record.member)
                update.status = .dead
                apply(update, now: now, into: &out)
            case .dead, .left:
                records[id] = nil
                sortedIDs.removeAll { $0 == id }
                timedMembers.remove(id)
                cachedLiveCount = nil
            }
        }
    }

    /// Gossip fan-out: pending updates to `gossipFanout` random live members.
    mutating func gossipRound(into out: inout [SWIMDirective]) {
        guard !gossipQueue.isEmpty else { return }
        for peer in randomLiveMembers(count: settings.gossipFanout) {
            let updates = gossipQueue.take(
                maxCount: settings.maxPiggyback,
                limit: settings.retransmitLimit(memberCount: liveCount)
            )
            if updates.isEmpty { break }
            out.append(.send(SWIMMessage(sender: myself.peer, payload: .gossip, gossip: updates), to: peer.address))
        }
    }

    /// Anti-entropy: full state to one random live member, and to one dead member or seed that
    /// is not a live member, so that the two sides of a healed partition find each other.
    mutating func pushPullRound(into out: inout [SWIMDirective]) {
        if let peer = randomLiveMembers(count: 1).first {
            sendFullState(to: peer.address, isReply: false, into: &out)
        }
        let liveAddresses = Set(
            sortedIDs.compactMap { id in
                records[id].flatMap { $0.member.status.isLive ? $0.member.address : nil }
            })
        var candidates = sortedIDs.compactMap { id in
            records[id].flatMap { $0.member.status == .dead ? $0.member.address : nil }
        }
        candidates += seeds.filter { !liveAddresses.contains($0) && !candidates.contains($0) }
        if let address = candidates.randomElement(using: &rng) {
            sendFullState(to: address, isReply: false, into: &out)
        }
    }

    /// This node's whole view, `myself` first, tombstones included.
    var fullState: [MemberUpdate] {
        var state = [MemberUpdate(myself)]
        state.reserveCapacity(sortedIDs.count + 1)
        for id in sortedIDs {
            guard let member = records[id]?.member else { continue }
            state.append(MemberUpdate(member, source: member.status == .suspect ? myself.id : nil))
        }
        return state
    }

    mutating func sendFullState(to address: String, isReply: Bool, into out: inout [SWIMDirective]) {
        let message = SWIMMessage(sender: myself.peer, payload: .pushPull(members: fullState, isReply: isReply))
        out.append(.send(message, to: address))
    }

    mutating func sendJoin(into out: inout [SWIMDirective]) {
        for seed in seeds {
            let message = SWIMMessage(sender: myself.peer, payload: .join, gossip: [MemberUpdate(myself)])
            out.append(.send(message, to: seed))
        }
    }
}
