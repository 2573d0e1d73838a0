import Foundation
import Synchronization

/// Runs a blocking call on a thread of its own and resumes the caller when it returns.
///
/// `nng_close` waits for the socket's contexts and callbacks to finish; some of those finish only
/// when a Swift task (a request handler) gets to run. Calling it on the cooperative pool (two threads
/// on a 2-core machine) can therefore deadlock: seen here with two servers closing at once, each
/// blocking one pool thread while their handlers waited for a free one. Every blocking nng call goes
/// through this function instead, and so does the node's blocking storage work (opening RocksDB,
/// recovery scans, start-up writes, stopping the WAL writer, closing the database): a RocksDB call
/// that takes seconds would otherwise hold one of those two threads for as long.
public func offPool<T: Sendable, Failure: Error>(
    _ name: String, _ body: @escaping @Sendable () throws(Failure) -> T
) async throws(Failure) -> T {
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Failure>, Never>) in
        let thread = Thread {
            do throws(Failure) {
                continuation.resume(returning: .success(try body()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        thread.name = name
        thread.start()
    }
    return try result.get()
}

/// Starts a blocking call on a thread of its own without waiting for it (for synchronous `close()`
/// methods that may be called from the cooperative pool or from `deinit`).
func detachOffPool(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread { body() }
    thread.name = name
    thread.start()
}

/// Runs `body` but stops waiting for it after `limit`. Returns whether it finished in time; when it
/// did not, `body` keeps running in the background. The caller's cancellation does not shorten the
/// wait: what is waited for here is a close, which must finish before its resources are freed.
func withBoundedWait(_ limit: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    await withDeadline(limit, honouringCancellation: false) {
        await body()
        return true
    } ?? false
}

/// Runs `body`, returning `nil` if it has not finished after `limit`, or as soon as the calling task
/// is cancelled (a caller cancelled before the call does not start `body` at all).
///
/// The body is not cancelled when the caller stops waiting: work that has started, such as an
/// ingest already durable, must still complete. That is why it runs in a task of its own, the one
/// task this call costs; the deadline is a timer, not a task.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withDeadline(limit, honouringCancellation: true, body)
}

private func withDeadline<T: Sendable>(
    _ limit: Duration, honouringCancellation: Bool, _ body: @escaping @Sendable () async -> T
) async -> T? {
    if honouringCancellation && Task.isCancelled { return nil }
    let outcome = Outcome<T>()
    let deadline = ContinuousClock.now + limit
    // Unstructured on purpose: it must be free to outlive a caller that stopped waiting.
    Task { outcome.deliver(await body()) }
    while outcome.value == nil, ContinuousClock.now < deadline, !(honouringCancellation && Task.isCancelled) {
        await outcome.arrived.wait(until: deadline, honouringCancellation: honouringCancellation)
    }
    return outcome.value
}

/// The value of a body run by ``withDeadline(_:_:)``, once it arrived.
private final class Outcome<T: Sendable>: Sendable {
    let arrived = Wakeup()
    private let stored = Mutex<T?>(nil)

    var value: T? { stored.withLock { $0 } }

    func deliver(_ value: T) {
        stored.withLock { $0 = value }
        arrived.signal()
    }
}
