import Foundation
import Testing
import Wire

@testable import Actors

@Suite("coordinator inbox")
struct CoordinatorInboxTests {
    private func event(_ id: String, at ms: Int64, bytes: Int = 10, kind: String = "alert")
        -> Infranaut_V1_ReceivedEvent
    {
        .with {
            $0.event = .with {
                $0.id = id
                $0.kind = kind
                $0.payload = Data(repeating: 1, count: bytes)
            }
            $0.receivedUnixMs = ms
        }
    }

    @Test("loading keeps the newest run that fits the caps; what did not fit is deleted at the first trim")
    func loadKeepsNewest() {
        // Stored out of order; 3 fit the count cap.
        let stored = [event("c", at: 3), event("a", at: 1), event("e", at: 5), event("b", at: 2), event("d", at: 4)]
        var inbox = CoordinatorInbox(loading: stored, capacity: 3, maxBytes: 1_000)
        #expect(["c", "d", "e"].allSatisfy { inbox.contains($0) })
        #expect(!inbox.contains("a") && !inbox.contains("b"))
        #expect(inbox.receivedTotal == 5)
        #expect(Set(inbox.trim()) == ["a", "b"])
        #expect(inbox.trim().isEmpty)
        #expect(inbox.newest(limit: 10, maxBytes: 1 << 20).map(\.event.id) == ["c", "d", "e"])
    }

    @Test("a byte cap drops the oldest first, and an older event never stays once a newer one did not fit")
    func byteCap() {
        let stored = [event("old", at: 1, bytes: 10), event("big", at: 2, bytes: 90), event("new", at: 3, bytes: 10)]
        var inbox = CoordinatorInbox(loading: stored, capacity: 10, maxBytes: 50)
        // "new" fits, "big" does not, so "old" goes too even though it would fit.
        #expect(inbox.contains("new") && !inbox.contains("big") && !inbox.contains("old"))
        #expect(Set(inbox.trim()) == ["big", "old"])

        inbox.insert(event("x", at: 4, bytes: 30))
        inbox.insert(event("y", at: 5, bytes: 30))
        #expect(inbox.trim() == ["new", "x"])
        #expect(inbox.contains("y"))
        #expect(inbox.receivedTotal == 5)
    }

    @Test("a listing is the newest events, oldest first, within the count and the byte budget")
    func listing() {
        var inbox = CoordinatorInbox(loading: [], capacity: 100, maxBytes: 1 << 20)
        for index in 0..<10 { inbox.insert(event("e\(index)", at: Int64(index), bytes: 100)) }
        #expect(inbox.newest(limit: 3, maxBytes: 1 << 20).map(\.event.id) == ["e7", "e8", "e9"])
        // Each counts its payload plus 256 bytes: two fit in 800.
        #expect(inbox.newest(limit: 10, maxBytes: 800).map(\.event.id) == ["e8", "e9"])
    }

    @Test(
        "channels and silences are kept apart: a stream of other events never pushes them out, and a listing filters by kind"
    )
    func retainedKinds() {
        let stored = [
            event("channel/a", at: 1, kind: "channel"), event("x0", at: 2), event("silence/s", at: 3, kind: "silence"),
        ]
        var inbox = CoordinatorInbox(
            loading: stored, capacity: 2, maxBytes: 1_000, retainedKinds: ["channel", "silence"], retainedCapacity: 2)
        for index in 1..<50 { inbox.insert(event("x\(index)", at: Int64(3 + index))) }
        let dropped = inbox.trim()
        #expect(dropped.count == 48 && !dropped.contains("channel/a") && !dropped.contains("silence/s"))
        #expect(inbox.contains("channel/a") && inbox.contains("silence/s") && inbox.contains("x49"))
        #expect(
            inbox.newest(limit: 10, maxBytes: 1 << 20, kinds: ["channel", "silence"]).map(\.event.id)
                == ["channel/a", "silence/s"])
        #expect(inbox.newest(limit: 10, maxBytes: 1 << 20).map(\.event.id) == ["channel/a", "silence/s", "x48", "x49"])
        // The retained tier has its own cap, oldest first; a restart keeps the same.
        inbox.insert(event("channel/b", at: 100, kind: "channel"))
        #expect(inbox.trim() == ["channel/a"])
        let reloaded = CoordinatorInbox(
            loading: stored + [event("channel/b", at: 100, kind: "channel")], capacity: 2, maxBytes: 1_000,
            retainedKinds: ["channel", "silence"], retainedCapacity: 2)
        #expect(reloaded.contains("silence/s") && reloaded.contains("channel/b") && !reloaded.contains("channel/a"))
    }
}
