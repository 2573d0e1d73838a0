import Foundation

/// Makes write batches durable (WAL fsync) from a dedicated thread, merging the batches that queue
/// up while one fsync runs into the next single write: one fsync then covers many callers.
///
/// Invariants:
/// - A caller of ``write(_:)`` resumes only after its batch is durable (or failed): the ack path may
///   rely on it.
/// - Batches become durable in the order ``write(_:)`` was called, and callers are resumed in that
///   order; a batch is never reordered before one submitted earlier.
/// - RocksDB's blocking calls run on the writer's own thread, never on Swift's cooperative pool.
/// - Ownership: the thread holds a strong reference to the writer from `init` until `run()` returns,
///   which happens only after ``shutdown()`` and once the queue is empty. The writer therefore
///   outlives its thread: it is never freed while the thread waits on or reads its state. The writer
///   keeps no reference to the thread (that would be a cycle), so after shutdown the last caller's
///   release frees it. A writer that is never shut down is never freed (nor is its thread): callers
///   must call ``shutdown()``.
public final class GroupCommitWriter: @unchecked Sendable {
    // Safe: `queue`, `running`, `failure` and the counters are only touched while holding `condition`.
    private struct Pending {
        var batch: WriteBatch
        var continuation: CheckedContinuation<Result<Void, StorageError>, Never>
    }

    private let database: Database
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var running = true
    private let finished = DispatchSemaphore(value: 0)
    /// A group stops growing once it holds this many bytes.
    public let maxGroupBytes: Int
    /// Set by the first failed group: every later batch fails too, so nothing queued after a failed
    /// batch can become durable ahead of it (which would break submission order).
    private var failure: StorageError?
    private var groupsWritten: UInt64 = 0
    private var batchesWritten: UInt64 = 0

    /// Called with the duration of each synced write (the fsync latency), on the writer's thread.
    private let onSync: (@Sendable (Duration) -> Void)?

    public init(
        database: Database, maxGroupBytes: Int = 32 << 20, onSync: (@Sendable (Duration) -> Void)? = nil
    ) {
        self.database = database
        self.maxGroupBytes = maxGroupBytes
        self.onSync = onSync
        // Strong on purpose (see "Ownership" above): released when `run()` returns.
        let thread = Thread { [self] in self.run() }
        thread.name = "infranaut-wal-writer"
        thread.start()
    }

    /// Writes `batch` durably (sync WAL write). Returns when the batch is on disk.
    public func write(_ batch: WriteBatch) async throws(StorageError) {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, StorageError>, Never>) in
            condition.lock()
            guard running else {
                condition.unlock()
                continuation.resume(
                    returning: .failure(
                        StorageError(.closed, operation: "write", message: "the WAL writer has shut down")))
                return
            }
            queue.append(Pending(batch: batch, continuation: continuation))
            condition.signal()
            condition.unlock()
        }
        try result.get()
    }

    /// Groups written and batches they held so far (batches / groups is the mean group size).
    public var statistics: (groups: UInt64, batches: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        return (groupsWritten, batchesWritten)
    }

    /// Finishes every batch already queued, then stops the thread. Later writes fail with `.closed`.
    public func shutdown() {
        condition.lock()
        let wasRunning = running
        running = false
        condition.signal()
        condition.unlock()
        if wasRunning { finished.wait() }
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty && running { condition.wait() }
            if queue.isEmpty && !running {
                condition.unlock()
                finished.signal()
                return
            }
            var group: [Pending] = []
            var bytes = 0
            var index = 0
            while index < queue.count && (group.isEmpty || bytes + queue[index].batch.byteCount <= maxGroupBytes) {
                bytes += queue[index].batch.byteCount
                group.append(queue[index])
                index += 1
            }
            queue.removeFirst(index)
            // Only this thread sets `failure`; reading it under the lock taken anyway is enough.
            let earlier = failure
            condition.unlock()

            let result: Result<Void, StorageError>
            if let earlier {
                result = .failure(
                    StorageError(
                        earlier.code, operation: "write",
                        message: "an earlier WAL write failed; this writer accepts no more writes; restart the node",
                        cause: earlier))
            } else {
                var merged = WriteBatch()
                for pending in group { merged.append(contentsOf: pending.batch) }
                let started = ContinuousClock.now
                do throws(StorageError) {
                    try database.write(merged, sync: true)
                    result = .success(())
                } catch {
                    result = .failure(error)
                }
                onSync?(ContinuousClock.now - started)
            }
            condition.lock()
            switch result {
            case .success:
                groupsWritten += 1
                batchesWritten += UInt64(group.count)
            case .failure(let error):
                if earlier == nil { failure = error }
            }
            condition.unlock()
            for pending in group { pending.continuation.resume(returning: result) }
        }
    }

    deinit {
        assert(!running, "GroupCommitWriter released without shutdown()")
    }
}
