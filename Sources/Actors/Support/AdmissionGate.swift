import Cluster
import Synchronization

/// A counting gate with a bounded queue: at most `limit` holders at once; up to `maxWaiting`
/// more wait in arrival order, each for at most its own patience. Nobody waits unboundedly and
/// the queue cannot grow without bound, so a burst costs a bounded amount of memory and every
/// caller gets an answer within its patience.
final class AdmissionGate: Sendable {
    private struct Waiter {
        var id: UInt64
        /// Signalled when a holder hands this waiter its slot.
        var wakeup: Wakeup
    }

    private struct State {
        var holders = 0
        var waiting: [Waiter] = []
        var nextID: UInt64 = 0
    }

    let limit: Int
    let maxWaiting: Int
    private let state = Mutex(State())

    init(limit: Int, maxWaiting: Int) {
        self.limit = max(1, limit)
        self.maxWaiting = maxWaiting
    }

    /// Takes a slot without waiting, or returns false.
    func tryEnter() -> Bool {
        state.withLock { state in
            guard state.holders < limit else { return false }
            state.holders += 1
            return true
        }
    }

    /// Takes a slot, waiting up to `patience` (less if the task is cancelled); false when none came
    /// free in time or the queue is full.
    func enter(patience: Duration) async -> Bool {
        enum Step { case entered, refused, wait(UInt64, Wakeup) }
        let step = state.withLock { state -> Step in
            if state.holders < limit {
                state.holders += 1
                return .entered
            }
            guard state.waiting.count < maxWaiting else { return .refused }
            state.nextID &+= 1
            let waiter = Waiter(id: state.nextID, wakeup: Wakeup())
            state.waiting.append(waiter)
            return .wait(waiter.id, waiter.wakeup)
        }
        guard case .wait(let id, let wakeup) = step else {
            if case .entered = step { return true }
            return false
        }
        let deadline = ContinuousClock.now + patience
        while ContinuousClock.now < deadline, !Task.isCancelled, isWaiting(id) {
            await wakeup.wait(until: deadline)
        }
        // Still queued: give up. Gone from the queue: a holder handed this waiter its slot, whether
        // or not that was what ended the wait.
        return state.withLock { state in
            guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return true }
            state.waiting.remove(at: index)
            return false
        }
    }

    private func isWaiting(_ id: UInt64) -> Bool {
        state.withLock { state in state.waiting.contains { $0.id == id } }
    }

    /// Returns a slot: the longest waiter takes it over.
    func leave() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiting.isEmpty else {
                state.holders -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.wakeup.signal()
    }

    var holders: Int { state.withLock { $0.holders } }

    /// Callers waiting for a slot.
    var waiting: Int { state.withLock { $0.waiting.count } }
}
