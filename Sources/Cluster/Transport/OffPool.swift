import Foundation
import Synchronization

/// Runs a blocking call on a thread of its own and resumes the caller when it returns.
///
/// `nng_close` waits for the socket's contexts and callbacks to finish; some of those finish only
/// when a Swift task (a request handler) gets to run. Calling it on the cooperative pool (two threads
/// on a 2-core machine) can therefore deadlock: seen here with two servers closing at once, each
/// blocking one pool thread while their handlers waited for a free one. Every blocking nng call goes
/// through this function instead.
func offPool<T: Sendable>(_ name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.name = name
        thread.start()
    }
}

/// Starts a blocking call on a thread of its own without waiting for it (for synchronous `close()`
/// methods that may be called from the cooperative pool or from `deinit`).
func detachOffPool(_ name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread { body() }
    thread.name = name
    thread.start()
}

/// Runs `body` but stops waiting for it after `limit`. Returns whether it finished in time; when it
/// did not, `body` keeps running in the background.
func withBoundedWait(_ limit: Duration, _ body: @escaping @Sendable () async -> Void) async -> Bool {
    await withDeadline(limit) { await body(); return true } ?? false
}

/// Runs `body`, returning `nil` if it has not finished after `limit`. The body is not cancelled
/// (work that has started, such as an ingest already durable, must still complete); the timer is
/// cancelled as soon as the body finishes, so no sleeping task outlives the call.
public func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async -> T) async -> T? {
    await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
        let once = ResumeOnce(continuation)
        let timer = Task {
            try? await Task.sleep(for: limit)
            if !Task.isCancelled { once.resume(nil) }
        }
        Task {
            let value = await body()
            timer.cancel()
            once.resume(value)
        }
    }
}

/// A continuation that is resumed by whichever caller comes first.
private final class ResumeOnce<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T?, Never>?>

    init(_ continuation: CheckedContinuation<T?, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: T?) {
        let taken = continuation.withLock { stored -> CheckedContinuation<T?, Never>? in
            defer { stored = nil }
            return stored
        }
        taken?.resume(returning: value)
    }
}
