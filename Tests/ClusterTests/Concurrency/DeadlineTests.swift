import Cluster
import Synchronization
import Testing

/// Opens once; every task waiting on it (now or later) goes on.
private final class Latch: Sendable {
    private let opened = Mutex(false)
    private let wakeups = Mutex<[Wakeup]>([])

    func open() {
        opened.withLock { $0 = true }
        for wakeup in wakeups.withLock({ $0 }) { wakeup.signal() }
    }

    var isOpen: Bool { opened.withLock { $0 } }

    func wait() async {
        let wakeup = Wakeup()
        wakeups.withLock { $0.append(wakeup) }
        while !isOpen { await wakeup.wait() }
    }
}

@Suite("waiting without polling", .timeLimit(.minutes(1)))
struct DeadlineTests {
    @Test("a signal sent before the wait is not lost; a wait without one ends at its deadline")
    func wakeup() async {
        let wakeup = Wakeup()
        wakeup.signal()
        #expect(await wakeup.wait(until: .now + .seconds(30)))
        let started = ContinuousClock.now
        #expect(!(await wakeup.wait(until: .now + .milliseconds(50))))
        #expect(ContinuousClock.now - started >= .milliseconds(50))
    }

    @Test("cancelling the waiting task ends its wait")
    func wakeupCancelled() async {
        let wakeup = Wakeup()
        let waiting = Task { await wakeup.wait() }
        waiting.cancel()
        #expect(!(await waiting.value))
    }

    @Test("withDeadline returns the body's value when it finishes in time")
    func inTime() async {
        #expect(await withDeadline(.seconds(30)) { 42 } == 42)
    }

    @Test("withDeadline returns nil at the deadline, and the body still runs to the end")
    func bodyOutlivesDeadline() async {
        let gate = Latch()
        let finished = Latch()
        let value = await withDeadline(.milliseconds(50)) { () -> Int in
            await gate.wait()
            finished.open()
            return 1
        }
        #expect(value == nil)
        gate.open()
        await finished.wait()
    }

    @Test("withDeadline stops waiting as soon as its caller is cancelled; the body is not cancelled")
    func callerCancelled() async {
        let started = Latch()
        let gate = Latch()
        let finished = Latch()
        let bodySawCancellation = Mutex(false)
        let caller = Task {
            await withDeadline(.seconds(60)) { () -> Int in
                started.open()
                await gate.wait()
                bodySawCancellation.withLock { $0 = Task.isCancelled }
                finished.open()
                return 1
            }
        }
        await started.wait()
        let cancelledAt = ContinuousClock.now
        caller.cancel()
        #expect(await caller.value == nil)
        #expect(ContinuousClock.now - cancelledAt < .seconds(10))
        gate.open()
        await finished.wait()
        #expect(!bodySawCancellation.withLock { $0 })
    }

    @Test("a caller cancelled before withDeadline does not start the body")
    func cancelledBefore() async {
        let ran = Mutex(false)
        let caller = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await withDeadline(.seconds(60)) { ran.withLock { $0 = true } }
        }
        #expect(await caller.value == nil)
        #expect(!ran.withLock { $0 })
    }
}
