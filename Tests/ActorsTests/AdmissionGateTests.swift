import Testing

@testable import Actors

@Suite("admission gate", .timeLimit(.minutes(1)))
struct AdmissionGateTests {
    @Test("a waiter takes over the slot of a holder that leaves")
    func handOver() async {
        let gate = AdmissionGate(limit: 1, maxWaiting: 1)
        #expect(gate.tryEnter())
        let waiter = Task { await gate.enter(patience: .seconds(30)) }
        await waitUntil { gate.waiting == 1 }
        gate.leave()
        #expect(await waiter.value)
        #expect(gate.holders == 1)
    }

    @Test("a waiter gives up at its patience; one beyond the queue is refused at once")
    func patienceAndQueue() async {
        let gate = AdmissionGate(limit: 1, maxWaiting: 1)
        #expect(gate.tryEnter())
        let started = ContinuousClock.now
        let waiter = Task { await gate.enter(patience: .milliseconds(100)) }
        await waitUntil { gate.waiting == 1 }
        #expect(!(await gate.enter(patience: .seconds(30))), "the queue is full")
        #expect(!(await waiter.value))
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        #expect(gate.waiting == 0)
        #expect(gate.holders == 1)
    }

    @Test("a cancelled waiter stops waiting at once and is not handed a slot")
    func cancelled() async {
        let gate = AdmissionGate(limit: 1, maxWaiting: 4)
        #expect(gate.tryEnter())
        let waiter = Task { await gate.enter(patience: .seconds(60)) }
        await waitUntil { gate.waiting == 1 }
        let cancelledAt = ContinuousClock.now
        waiter.cancel()
        #expect(!(await waiter.value))
        #expect(ContinuousClock.now - cancelledAt < .seconds(10))
        gate.leave()
        #expect(gate.holders == 0, "the slot went back to the gate, not to the cancelled waiter")
    }
}

/// Waits (yielding) until `condition` holds; the suite's time limit bounds it.
private func waitUntil(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}
