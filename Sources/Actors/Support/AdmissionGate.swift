import Synchronization

/// A counting gate with a bounded queue: at most `limit` holders at once; up to `maxWaiting`
/// more wait in arrival order, each for at most its own patience. Nobody waits unboundedly and
/// the queue cannot grow without bound, so a burst costs a bounded amount of memory and every
/// caller gets an answer within its patience.
final class AdmissionGate: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
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

    /// Takes a slot, waiting up to `patience`; false when none came free in time or the queue is full.
    func enter(patience: Duration) async -> Bool {
        enum Step { case entered, refused, wait(UInt64) }
        let id = state.withLock { $0.nextID &+= 1; return $0.nextID }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let step = state.withLock { state -> Step in
                if state.holders < limit {
                    state.holders += 1
                    return .entered
                }
                guard state.waiting.count < maxWaiting else { return .refused }
                state.waiting.append(Waiter(id: id, continuation: continuation))
                return .wait(id)
            }
            switch step {
            case .entered: continuation.resume(returning: true)
            case .refused: continuation.resume(returning: false)
            case .wait(let id):
                Task {
                    try? await Task.sleep(for: patience)
                    self.giveUp(id)
                }
            }
        }
    }

    private func giveUp(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiting.remove(at: index)
        }
        waiter?.continuation.resume(returning: false)
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
        next?.continuation.resume(returning: true)
    }

    var holders: Int { state.withLock { $0.holders } }
}
