import Testing

@testable import Cluster

@Suite("Raft snapshots")
struct RaftSnapshotTests {
    static let settings = RaftChaos.settings
    static let voters: Set<NodeID> = ["a", "b", "c"]

    static func entries(_ range: ClosedRange<RaftIndex>, term: RaftTerm) -> [RaftEntry] {
        range.map { RaftEntry(term: term, index: $0, body: .command([UInt8($0)])) }
    }

    /// A follower `b` at term 1 that took entries 1…`last` from leader `a`, committed through `commit`.
    static func follower(last: RaftIndex, commit: RaftIndex) -> RaftInstance {
        var follower = RaftInstance(id: "b", voters: voters, settings: settings, seed: 1)
        _ = follower.start(now: .zero)
        _ = follower.onMessage(append(after: 0, 1...last, commit: commit), now: .milliseconds(1))
        return follower
    }

    /// Replica `a` elected leader of term `durable.term + 1` at 5 s with `b`'s pre-vote and vote.
    static func leader(_ durable: RaftDurableState) throws -> RaftInstance {
        var leader = RaftInstance(id: "a", voters: voters, durable: durable, settings: settings, seed: 3)
        _ = leader.start(now: .zero)
        let now = Duration.seconds(5)
        let term = durable.term + 1
        _ = leader.onTick(now: now)
        _ = leader.onMessage(RaftMessage(from: "b", term: term, payload: .preVoteResponse(granted: true)), now: now)
        _ = leader.onMessage(RaftMessage(from: "b", term: term, payload: .voteResponse(granted: true)), now: now)
        try #require(leader.role == .leader && leader.term == term)
        return leader
    }

    /// An append from leader `a` in term 1 carrying entries `range` (of term 1) after `prevIndex`.
    static func append(after prevIndex: RaftIndex, _ range: ClosedRange<RaftIndex>?, commit: RaftIndex) -> RaftMessage {
        let entries = range.map { Self.entries($0, term: 1) } ?? []
        return RaftMessage(
            from: "a", term: 1,
            payload: .append(prevIndex: prevIndex, prevTerm: prevIndex == 0 ? 0 : 1, entries: entries, commit: commit))
    }

    /// What the directives answer to `a`.
    static func answers(_ directives: [RaftDirective]) -> [RaftMessage.Payload] {
        replies(directives, to: "a").map(\.payload)
    }

    static func success(_ index: RaftIndex) -> RaftMessage.Payload {
        .appendResponse(success: true, index: index, rejectedPrev: 0)
    }

    static func replies(_ directives: [RaftDirective], to peer: NodeID) -> [RaftMessage] {
        directives.compactMap { if case .send(let message, let to) = $0, to == peer { message } else { nil } }
    }

    static func persists(_ directives: [RaftDirective]) -> [RaftPersist] {
        directives.compactMap { if case .persist(let persist) = $0 { persist } else { nil } }
    }

    @Test("a follower down while the leader compacted past it catches up by snapshot")
    func laggingFollowerCatchesUpBySnapshot() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 21, settings: Self.settings)
        let leader = try #require(RaftScenarioTests.electLeader(sim))
        let lagging = (leader + 1) % 3
        sim.crash(lagging, mode: .inFlightWritten)
        for value in UInt64(1)...40 { sim.propose(value, at: leader) }
        sim.run(for: .milliseconds(500))
        let applied = sim.replicas[leader].stateMachine.count
        sim.checkpoint(leader, through: applied - 3)
        let compacted = sim.replicas[leader].instance.snapshotIndex
        #expect(compacted == RaftIndex(applied - 3) && compacted > 30)
        // Appends sent before the compaction (entries from index 1) may still be on their way to the
        // crashed follower; let them arrive at the crashed node and be lost, so that only what the
        // leader sends after compacting can reach it.
        sim.run(for: .milliseconds(200))
        sim.restart(lagging)
        sim.run(for: .seconds(1))
        let follower = sim.replicas[lagging]
        #expect(sim.snapshotsInstalled == 1)
        #expect(follower.instance.snapshotIndex >= compacted)
        #expect(follower.disk.durable.snapshot == follower.instance.snapshot)
        #expect(follower.instance.lastIndex == sim.replicas[leader].instance.lastIndex)
        #expect(follower.stateMachine == sim.replicas[leader].stateMachine)
        // The group keeps committing, and the caught-up follower applies what follows the snapshot.
        #expect(sim.propose(99, at: leader))
        sim.run(for: .milliseconds(300))
        #expect(sim.checker.acknowledged.contains { $0.value == 99 })
        #expect(sim.replicas[lagging].stateMachine.last?.body == .command(RaftChecker.command(99)))
        // Restarting from the installed snapshot and the log after it loses nothing.
        sim.crash(lagging, mode: .inFlightWritten)
        sim.restart(lagging)
        sim.run(for: .milliseconds(300))
        #expect(sim.replicas[lagging].stateMachine == sim.replicas[leader].stateMachine)
        #expect(sim.violation == nil)
    }

    @Test("a snapshot that arrives after the follower caught up is not installed; the answer moves the leader on")
    func lateSnapshotIsIgnored() {
        var follower = Self.follower(last: 10, commit: 8)
        let meta = RaftSnapshotMeta(index: 6, term: 1, voters: Self.voters)
        let (accepted, directives) = follower.installSnapshot(meta, leader: "a", term: 1, now: .milliseconds(2))
        #expect(!accepted)
        #expect(Self.persists(directives).isEmpty)
        #expect(Self.answers(directives) == [Self.success(8)])
        #expect(follower.snapshot == nil && follower.lastIndex == 10 && follower.commitIndex == 8)
    }

    @Test("a stale leader's snapshot is refused, and the answer makes it step down")
    func staleLeaderSnapshotIsRefused() throws {
        var follower = Self.follower(last: 4, commit: 2)
        _ = follower.onMessage(
            RaftMessage(from: "c", term: 3, payload: .append(prevIndex: 4, prevTerm: 1, entries: [], commit: 2)),
            now: .milliseconds(2))
        let meta = RaftSnapshotMeta(index: 9, term: 2, voters: Self.voters)
        let (accepted, directives) = follower.installSnapshot(meta, leader: "a", term: 2, now: .milliseconds(3))
        #expect(!accepted)
        #expect(Self.persists(directives).isEmpty)
        let replies = Self.replies(directives, to: "a")
        #expect(replies.map(\.term) == [3])
        #expect(replies.map(\.payload) == [.appendResponse(success: false, index: 4, rejectedPrev: 0)])
        #expect(follower.snapshot == nil && follower.term == 3 && follower.leader == "c")
        // The stale leader, on that answer, steps down.
        var stale = try Self.leader(RaftDurableState(term: 1))
        _ = stale.onMessage(replies[0], now: .seconds(5))
        #expect(stale.term == 3 && stale.role == .follower)
    }

    @Test("an installed snapshot replaces a conflicting log, and keeps a matching suffix")
    func installReplacesOrKeepsTheLog() {
        // Entry 6 of term 1 conflicts with the snapshot's (term 2): the whole log goes.
        var conflicting = Self.follower(last: 8, commit: 3)
        let meta = RaftSnapshotMeta(index: 6, term: 2, voters: ["a", "b", "c", "d"])
        let (accepted, directives) = conflicting.installSnapshot(meta, leader: "a", term: 2, now: .milliseconds(2))
        #expect(accepted)
        #expect(Self.persists(directives).last == RaftPersist(term: nil, snapshot: meta, truncateFrom: 7))
        let persistAt = directives.firstIndex { if case .persist(let p) = $0 { p.snapshot != nil } else { false } }
        let answerAt = directives.firstIndex {
            if case .send(let m, "a") = $0, m.payload == Self.success(6) {
                true
            } else {
                false
            }
        }
        #expect(persistAt != nil && answerAt != nil && persistAt! < answerAt!)
        #expect(conflicting.log.isEmpty && conflicting.lastIndex == 6 && conflicting.lastTerm == 2)
        #expect(conflicting.commitIndex == 6 && conflicting.appliedIndex == 6)
        #expect(conflicting.voters == meta.voters)
        #expect(!directives.contains { if case .apply = $0 { true } else { false } })

        // Entry 6 of term 1 matches: entries 7 and 8 stay, and later appends continue from them.
        var matching = Self.follower(last: 8, commit: 3)
        let same = RaftSnapshotMeta(index: 6, term: 1, voters: Self.voters)
        let (kept, keptDirectives) = matching.installSnapshot(same, leader: "a", term: 1, now: .milliseconds(2))
        #expect(kept)
        #expect(Self.persists(keptDirectives) == [RaftPersist(snapshot: same)])
        #expect(matching.log.map(\.index) == [7, 8] && matching.firstIndex == 7)
        let directivesAfter = matching.onMessage(Self.append(after: 8, 9...9, commit: 9), now: .milliseconds(3))
        #expect(Self.answers(directivesAfter) == [Self.success(9)])
        #expect(directivesAfter.contains(.apply(Self.entries(7...9, term: 1))))
    }

    @Test("an append from below the follower's snapshot skips what the snapshot covers and succeeds")
    func appendBelowTheSnapshot() {
        let meta = RaftSnapshotMeta(index: 6, term: 1, voters: Self.voters)
        let durable = RaftDurableState(term: 1, snapshot: meta, log: Self.entries(5...7, term: 1))
        var follower = RaftInstance(id: "b", voters: Self.voters, durable: durable, settings: Self.settings, seed: 1)
        _ = follower.start(now: .zero)
        // Entries the snapshot covers, left by a crash before their deletion, are dropped on start.
        #expect(follower.log.map(\.index) == [7] && follower.commitIndex == 6 && follower.appliedIndex == 6)
        let directives = follower.onMessage(Self.append(after: 3, 4...9, commit: 9), now: .milliseconds(1))
        #expect(Self.answers(directives) == [Self.success(9)])
        #expect(Self.persists(directives) == [RaftPersist(entries: Self.entries(8...9, term: 1))])
        #expect(directives.contains(.apply(Self.entries(7...9, term: 1))))
        // A heartbeat wholly below the snapshot succeeds at the snapshot's index.
        let heartbeat = Self.append(after: 0, nil, commit: 9)
        #expect(Self.answers(follower.onMessage(heartbeat, now: .milliseconds(2))) == [Self.success(6)])
    }

    @Test(
        "a leader sends one snapshot to a follower that needs compacted entries, heartbeats meanwhile, resends it late")
    func leaderSnapshotsOneFollowerAtATime() throws {
        let meta = RaftSnapshotMeta(index: 10, term: 1, voters: Self.voters)
        let durable = RaftDurableState(term: 1, snapshot: meta, log: Self.entries(11...12, term: 1))
        var leader = try Self.leader(durable)
        var now = Duration.seconds(5)
        // b's log ends at 3: its rejection points below the snapshot.
        now += .milliseconds(5)
        let rejection = RaftMessage(
            from: "b", term: 2, payload: .appendResponse(success: false, index: 3, rejectedPrev: 12))
        let first = leader.onMessage(rejection, now: now)
        #expect(first.contains(.sendSnapshot(to: "b", meta, term: 2)))
        // While it is in flight, b gets heartbeats at prevIndex 0 only, and no second snapshot.
        now += Self.settings.heartbeatInterval
        let beat = leader.onTick(now: now)
        #expect(
            Self.replies(beat, to: "b").map(\.payload) == [.append(prevIndex: 0, prevTerm: 0, entries: [], commit: 10)])
        #expect(!beat.contains { if case .sendSnapshot = $0 { true } else { false } })
        // A heartbeat's answer does not end it; an election timeout without success sends it again.
        let heartbeatAnswer = RaftMessage(
            from: "b", term: 2, payload: .appendResponse(success: true, index: 0, rejectedPrev: 0))
        #expect(Self.replies(leader.onMessage(heartbeatAnswer, now: now), to: "b").isEmpty)
        now += Self.settings.electionTimeout - Self.settings.heartbeatInterval
        let late = leader.onTick(now: now)
        #expect(late.contains(.sendSnapshot(to: "b", meta, term: 2)))
        try #require(leader.role == .leader)
        // The install's success resumes appends right after the snapshot.
        let installed = RaftMessage(
            from: "b", term: 2, payload: .appendResponse(success: true, index: 10, rejectedPrev: 0))
        let resumed = Self.replies(leader.onMessage(installed, now: now), to: "b")
        guard case .append(10, 1, let sent, _) = resumed.first?.payload else {
            Issue.record("no append after the snapshot: \(resumed)")
            return
        }
        #expect(sent.map(\.index) == [11, 12, 13])
    }

    @Test("a leader knows what every follower holds: compacting through it needs no snapshot")
    func compactingThroughWhatFollowersHoldNeedsNoSnapshot() throws {
        let sim = RaftSimulation(voters: 3, spares: 0, seed: 21, settings: Self.settings)
        let leader = try #require(RaftScenarioTests.electLeader(sim))
        let lagging = (leader + 1) % 3
        sim.run(for: .milliseconds(300))
        let caughtUp = sim.replicas[leader].instance.lastIndex
        #expect(sim.replicas[leader].instance.heldByEveryFollower == caughtUp)
        #expect(sim.replicas[lagging].instance.heldByEveryFollower == nil)

        sim.crash(lagging, mode: .inFlightWritten)
        for value in UInt64(1)...40 { sim.propose(value, at: leader) }
        sim.run(for: .milliseconds(500))
        let held = try #require(sim.replicas[leader].instance.heldByEveryFollower)
        #expect(held <= caughtUp)
        #expect(sim.replicas[leader].instance.lastIndex >= caughtUp + 40)
        // Everything the lagging follower lacks stays; everything else goes.
        sim.checkpoint(leader, through: Int(held))
        sim.restart(lagging)
        sim.run(for: .seconds(1))
        #expect(sim.snapshotsInstalled == 0)
        #expect(sim.replicas[lagging].stateMachine.count == sim.replicas[leader].stateMachine.count)
        #expect(sim.replicas[leader].instance.heldByEveryFollower == sim.replicas[leader].instance.lastIndex)
    }
}
