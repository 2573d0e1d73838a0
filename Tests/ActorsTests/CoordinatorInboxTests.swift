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
        "channels and silences are kept apart, each kind in its own tier: other events never push them out, and a listing filters by kind"
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
        // A flood of silences pushes out old silences only, never a channel.
        for index in 0..<5 { inbox.insert(event("silence/flood\(index)", at: Int64(100 + index), kind: "silence")) }
        let flooded = inbox.trim()
        #expect(Set(flooded) == ["silence/s", "silence/flood0", "silence/flood1", "silence/flood2"])
        #expect(inbox.contains("channel/a"))
    }

    @Test("of a retained object only its newest version is kept, by creation time, whatever the order of arrival")
    func newestVersionOnly() {
        func version(_ id: String, created: Int64, at ms: Int64) -> Infranaut_V1_ReceivedEvent {
            var received = event(id, at: ms, kind: "channel")
            received.event.createdUnixMs = created
            return received
        }
        var inbox = CoordinatorInbox(
            loading: [], capacity: 10, maxBytes: 1 << 20, retainedKinds: ["channel"], retainedCapacity: 10)
        inbox.insert(version("channel/ops/200/n1", created: 200, at: 1))
        // An older apply arriving later is not kept, and its stored record goes.
        inbox.insert(version("channel/ops/100/n2", created: 100, at: 2))
        #expect(inbox.trim() == ["channel/ops/100/n2"])
        #expect(inbox.contains("channel/ops/200/n1") && !inbox.contains("channel/ops/100/n2"))
        // A newer one replaces it. Re-applying every few minutes keeps one event per channel.
        for created in 300..<400 {
            inbox.insert(version("channel/ops/\(created)/n1", created: Int64(created), at: Int64(created)))
        }
        #expect(inbox.trim().count == 100)
        #expect(inbox.newest(limit: 100, maxBytes: 1 << 20).map(\.event.id) == ["channel/ops/399/n1"])
        let reloaded = CoordinatorInbox(
            loading: [version("channel/ops/5/n1", created: 5, at: 9), version("channel/ops/7/n1", created: 7, at: 8)],
            capacity: 10, maxBytes: 1 << 20, retainedKinds: ["channel"], retainedCapacity: 10)
        #expect(reloaded.contains("channel/ops/7/n1") && !reloaded.contains("channel/ops/5/n1"))
    }
}
