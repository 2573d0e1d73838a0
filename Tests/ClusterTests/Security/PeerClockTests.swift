import Cluster
import Testing

@Suite("peer clocks and request deadlines")
struct PeerClockTests {
    @Test("a peer's clock offset is learned from a quick exchange and cancels out of a frame's age")
    func offsetCancels() {
        var clock = PeerClock()
        let now = ContinuousClock.now
        // The peer's clock is 5 s ahead: asked at 1,000 and answered at 1,010 here, sealed at 6,005 there.
        clock.record(peer: "b", requestSentMs: 1_000, replySealedMs: 6_005, replyReceivedMs: 1_010, at: now)
        // A frame sealed just now by the peer's clock is not old.
        #expect(clock.transit(sender: "b", sentMs: 7_000, nowMs: 2_003, at: now) == .zero)
        // A frame sealed 13 s before it arrived (it sat in a stalled connection) is 13 s old, less
        // the 5 ms of doubt in the offset.
        #expect(clock.transit(sender: "b", sentMs: 7_000, nowMs: 15_000, at: now) == .milliseconds(12_995))
        // Nothing is known of other senders.
        #expect(clock.transit(sender: "c", sentMs: 7_000, nowMs: 15_000, at: now) == nil)
    }

    @Test("slow exchanges teach nothing, old samples are not used, and a stepped clock is relearned")
    func samplesAreChosen() {
        var clock = PeerClock()
        let start = ContinuousClock.now
        // A 200 ms round trip (the peer served a slow request) says little about its clock.
        clock.record(peer: "b", requestSentMs: 1_000, replySealedMs: 1_100, replyReceivedMs: 1_200, at: start)
        #expect(clock.transit(sender: "b", sentMs: 1_000, nowMs: 2_000, at: start) == nil)
        clock.record(peer: "b", requestSentMs: 1_000, replySealedMs: 1_005, replyReceivedMs: 1_010, at: start)
        #expect(clock.transit(sender: "b", sentMs: 1_000, nowMs: 4_000, at: start) == .milliseconds(2_995))
        #expect(
            clock.transit(sender: "b", sentMs: 1_000, nowMs: 4_000, at: start + PeerClock.maxSampleAge + .seconds(1))
                == nil)
        // The peer's clock steps back by 60 s; the next quick exchange says so.
        clock.record(peer: "b", requestSentMs: 5_000, replySealedMs: 1, replyReceivedMs: 5_002, at: start)
        let offset = Int64(1) - 5_001
        #expect(clock.transit(sender: "b", sentMs: 2, nowMs: UInt64(2 - offset) + 500, at: start) == .milliseconds(499))
    }

    @Test("a deadline is the sender's wait, capped by the node's, less the time the frame was under way")
    func deadlines() {
        let arrived = ContinuousClock.now
        let unset = RequestDeadline(timeoutMs: 0, cap: .seconds(30), arrivedAt: arrived)
        #expect(unset.budget == .seconds(30) && unset.instant == arrived + .seconds(30))
        let given = RequestDeadline(timeoutMs: 2_000, cap: .seconds(30), arrivedAt: arrived)
        #expect(given.budget == .seconds(2) && given.instant == arrived + .seconds(2))
        let capped = RequestDeadline(timeoutMs: 600_000, cap: .seconds(30), arrivedAt: arrived)
        #expect(capped.budget == .seconds(30))
        let underway = RequestDeadline(
            timeoutMs: 2_000, transit: .milliseconds(500), cap: .seconds(30), arrivedAt: arrived)
        #expect(underway.instant == arrived + .milliseconds(1_500))
        let stale = RequestDeadline(timeoutMs: 2_000, transit: .seconds(13), cap: .seconds(30), arrivedAt: arrived)
        #expect(stale.hasPassed)
    }
}
