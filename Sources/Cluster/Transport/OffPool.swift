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
    await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
        let once = ResumeOnce(continuation)
        Task {
            await body()
            once.resume(true)
        }
        Task {
            try? await Task.sleep(for: limit)
            once.resume(false)
        }
    }
}

/// A continuation that is resumed by whichever caller comes first.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Bool, Never>?>

    init(_ continuation: CheckedContinuation<Bool, Never>) {
        self.continuation = Mutex(continuation)
    }

    func resume(_ value: Bool) {
        let taken = continuation.withLock { stored -> CheckedContinuation<Bool, Never>? in
            defer { stored = nil }
            return stored
        }
        taken?.resume(returning: value)
    }
}
