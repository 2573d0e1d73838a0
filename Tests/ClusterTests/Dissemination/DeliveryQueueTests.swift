import Cluster
import Testing

@Suite("reliable delivery queue")
struct DeliveryQueueTests {
    private func coordinator(_ id: String, live: Bool = true, address: String? = nil) -> DeliveryQueue.Coordinator {
        .init(id: id, address: address ?? "tcp://\(id)", live: live)
    }

    @Test("an event goes to every coordinator and is forgotten once all acknowledged")
    func deliversToAll() {
        var queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a"), coordinator("b")], now: .zero)
        let first = queue.publish(id: "e1", payload: [1], now: .zero)
        let second = queue.publish(id: "e1", payload: [2], now: .zero)
        #expect(first)
        #expect(!second, "a second publish of the same id is refused")
        #expect(queue.waitingTargets(of: "e1") == ["a", "b"])
        let attempts = queue.due(now: .zero)
        #expect(Set(attempts.map(\.target)) == ["a", "b"])
        #expect(queue.due(now: .zero).isEmpty, "at most one attempt per target in flight")
        for attempt in attempts { queue.delivered(attempt) }
        #expect(queue.pendingIDs.isEmpty)
    }

    @Test("a coordinator that is down when the event is published gets it when it returns")
    func downAtPublish() {
        var queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a"), coordinator("c", live: false)], now: .zero)
        queue.publish(id: "e", payload: [], now: .zero)
        #expect(queue.waitingTargets(of: "e") == ["a", "c"])
        let attempts = queue.due(now: .zero)
        #expect(attempts.map(\.target) == ["a"], "no attempt to a dead coordinator")
        queue.delivered(attempts[0])
        #expect(queue.pendingIDs == ["e"], "still waiting for c")
        queue.coordinatorsChanged([coordinator("a"), coordinator("c")], now: .seconds(60))
        let retry = queue.due(now: .seconds(60))
        #expect(retry.map(\.target) == ["c"])
        queue.delivered(retry[0])
        #expect(queue.pendingIDs.isEmpty)
    }

    @Test("failures back off exponentially up to the maximum")
    func backoff() {
        var queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a")], now: .zero)
        queue.publish(id: "e", payload: [], now: .zero)
        var now = Duration.zero
        var delays: [Duration] = []
        for _ in 0..<8 {
            let attempt = queue.due(now: now)
            #expect(attempt.count == 1)
            queue.failed(attempt[0], now: now)
            let next = queue.nextDue!
            delays.append(next - now)
            #expect(queue.due(now: next - .milliseconds(1)).isEmpty)
            now = next
        }
        #expect(delays.prefix(4) == [.milliseconds(200), .milliseconds(400), .milliseconds(800), .milliseconds(1600)])
        #expect(delays.last == .seconds(5))
    }

    @Test("a coordinator killed mid-delivery gets the event when it is back within the retention; later, it is dropped")
    func deadCoordinatorRetention() {
        var queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a"), coordinator("b")], now: .zero)
        queue.publish(id: "e", payload: [], now: .zero)
        let first = queue.due(now: .zero)
        queue.delivered(first.first { $0.target == "a" }!)
        queue.failed(first.first { $0.target == "b" }!, now: .zero)
        // b is declared dead: no attempts while it is, but it is still waited for.
        queue.coordinatorsChanged([coordinator("a"), coordinator("b", live: false)], now: .seconds(3))
        #expect(queue.due(now: .seconds(10)).isEmpty)
        #expect(queue.waitingTargets(of: "e") == ["b"])
        // b restarts on a new address: delivered there at once.
        queue.coordinatorsChanged([coordinator("a"), coordinator("b", address: "tcp://b2")], now: .seconds(20))
        let retry = queue.due(now: .seconds(20))
        #expect(retry.map(\.address) == ["tcp://b2"])
        queue.delivered(retry[0])
        #expect(queue.pendingIDs.isEmpty)

        // Another event; b dies and stays away past the retention: the event completes without it.
        queue.publish(id: "f", payload: [], now: .seconds(30))
        queue.coordinatorsChanged([coordinator("a"), coordinator("b", live: false)], now: .seconds(31))
        for attempt in queue.due(now: .seconds(31)) { queue.delivered(attempt) }
        #expect(queue.waitingTargets(of: "f") == ["b"])
        _ = queue.due(now: .seconds(31) + queue.settings.deadRetention)
        #expect(queue.pendingIDs.isEmpty)
        #expect(queue.takeExpired() == ["f"], "the publisher is told, to delete its durable copy")
        #expect(queue.takeExpired().isEmpty)
    }

    @Test(
        "a coordinator that appears while an event is pending becomes a target; one that left is dropped; a forgotten one is waited for"
    )
    func membershipChanges() {
        var queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a"), coordinator("b")], now: .zero)
        queue.publish(id: "e", payload: [], now: .zero)
        queue.coordinatorsChanged([coordinator("a"), coordinator("b"), coordinator("n")], now: .seconds(1))
        #expect(queue.waitingTargets(of: "e") == ["a", "b", "n"])
        var left = coordinator("a", live: false)
        left.left = true
        // a left gracefully; b's tombstone was forgotten: b is still waited for, as a dead one.
        queue.coordinatorsChanged([left, coordinator("n")], now: .seconds(2))
        #expect(queue.waitingTargets(of: "e") == ["b", "n"])
        #expect(queue.due(now: .seconds(2)).map(\.target) == ["n"])
    }

    @Test("an event published while no coordinator is live waits for one")
    func noCoordinatorYet() {
        var queue = DeliveryQueue()
        queue.publish(id: "e", payload: [], now: .zero)
        #expect(queue.due(now: .seconds(1)).isEmpty)
        #expect(queue.pendingIDs == ["e"])
        queue.coordinatorsChanged([coordinator("a")], now: .seconds(2))
        #expect(queue.due(now: .seconds(2)).map(\.target) == ["a"])
    }

    @Test("the next deadline is the next retry or the next retention to run out, whichever comes first")
    func nextDeadline() {
        var queue = DeliveryQueue()
        #expect(queue.nextDeadline == nil)
        queue.publish(id: "lonely", payload: [], now: .zero)
        #expect(
            queue.nextDeadline == queue.settings.deadRetention,
            "an event without targets waits for a coordinator that long")

        queue = DeliveryQueue()
        queue.coordinatorsChanged([coordinator("a"), coordinator("b")], now: .seconds(1))
        queue.publish(id: "e", payload: [], now: .seconds(1))
        #expect(queue.nextDeadline == .seconds(1), "attempts due at once")
        let attempts = queue.due(now: .seconds(1))
        #expect(queue.nextDeadline == nil, "nothing to do until an attempt in flight finishes")
        queue.failed(attempts.first { $0.target == "a" }!, now: .seconds(2))
        #expect(queue.nextDeadline == .seconds(2) + queue.settings.initialBackoff)
        queue.delivered(attempts.first { $0.target == "b" }!)
        queue.coordinatorsChanged([coordinator("a", live: false), coordinator("b")], now: .seconds(3))
        #expect(
            queue.nextDeadline == .seconds(3) + queue.settings.deadRetention,
            "a dead target is waited for until its retention")
    }
}
