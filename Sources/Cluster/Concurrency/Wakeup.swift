import Dispatch
import Synchronization

/// Wakes one waiting task: what every "wait until X happens, or until T" in the node is built on,
/// instead of a loop that sleeps a few milliseconds and looks again.
///
/// A ``signal()`` that finds nobody waiting is remembered and ends the next ``wait(until:)`` at
/// once, so a signal sent between a waiter checking its condition and calling `wait` is never lost.
/// A wait also ends at its deadline, when the waiting task is cancelled, and (now and then) on a
/// signal remembered from before the condition was last checked: waiters check their condition
/// again after every wait. One task waits on a `Wakeup` at a time.
///
/// No Swift task is involved: the deadline is a Dispatch timer, cancelled as soon as the wait ends.
public final class Wakeup: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
        var timer: OneShotTimer?
    }

    private struct State {
        var pending = false
        var waiter: Waiter?
        var lastID: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// Wakes the waiting task, or the next one to wait.
    public func signal() {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiter else {
                state.pending = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: true)
    }

    /// Waits for a signal, until `deadline` at the latest (nil: no limit), or until the task is
    /// cancelled.
    /// - Returns: whether a signal ended the wait.
    @discardableResult
    public func wait(until deadline: ContinuousClock.Instant? = nil) async -> Bool {
        await wait(until: deadline, honouringCancellation: true)
    }

    /// Like ``wait(until:)``; without `honouringCancellation`, the wait ignores the task's
    /// cancellation (for work that must finish, such as closing a socket).
    @discardableResult
    func wait(until deadline: ContinuousClock.Instant?, honouringCancellation: Bool) async -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.lastID &+= 1
            return state.lastID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let early = state.withLock { state -> Bool? in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    // Checked under the lock that `expire` takes: a cancellation either shows here or
                    // finds the waiter installed below.
                    if honouringCancellation && Task.isCancelled { return false }
                    if let deadline, deadline <= .now { return false }
                    precondition(state.waiter == nil, "one task waits on a Wakeup at a time")
                    // The timer cannot fire before the waiter is stored: its handler takes this lock.
                    let timer = deadline.map { deadline in OneShotTimer(at: deadline) { self.expire(id) } }
                    state.waiter = Waiter(id: id, continuation: continuation, timer: timer)
                    return nil
                }
                if let early { continuation.resume(returning: early) }
            }
        } onCancel: {
            if honouringCancellation { expire(id) }
        }
    }

    /// Ends wait `id` without a signal (its deadline passed, or its task was cancelled).
    private func expire(_ id: UInt64) {
        let waiter = state.withLock { state -> Waiter? in
            guard let waiter = state.waiter, waiter.id == id else { return nil }
            state.waiter = nil
            return waiter
        }
        waiter?.timer?.cancel()
        waiter?.continuation.resume(returning: false)
    }
}

/// Calls `action` once at `deadline` unless cancelled first. A Dispatch timer source rather than
/// a sleeping task: it costs no Swift task, and `cancel()` releases the action at once.
final class OneShotTimer: Sendable {
    // DispatchSource is thread-safe (libdispatch serialises its state changes); the reference is
    // written once in `init`.
    private nonisolated(unsafe) let source: any DispatchSourceTimer

    init(at deadline: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) {
        // Capped at a day so the nanoseconds fit: a later deadline just means "not in this run".
        let remaining = min(max(.zero, deadline - .now), .seconds(86_400)).components
        let delay = Int(remaining.seconds) * 1_000_000_000 + Int(remaining.attoseconds / 1_000_000_000)
        source = DispatchSource.makeTimerSource(queue: .global())
        source.schedule(deadline: .now() + .nanoseconds(delay), leeway: .milliseconds(1))
        source.setEventHandler(handler: action)
        source.resume()
    }

    func cancel() { source.cancel() }

    deinit { source.cancel() }
}
