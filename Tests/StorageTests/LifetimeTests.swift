import Foundation
import Storage
import Synchronization
import Testing

@Suite("lifetimes of snapshots and the WAL writer")
struct LifetimeTests {
    @Test("reads through a released snapshot throw .closed instead of reading the latest state")
    func readAfterRelease() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            defer { db.close() }
            let family = db.defaultFamily
            try db.put([1], [10], in: family)
            let snapshot = try db.makeSnapshot()
            try db.put([1], [11], in: family)
            #expect(try db.get([1], in: family, snapshot: snapshot) == [10])
            snapshot.release()
            let getError = #expect(throws: StorageError.self) { try db.get([1], in: family, snapshot: snapshot) }
            #expect(getError?.code == .closed)
            let scanError = #expect(throws: StorageError.self) {
                try db.entries(prefix: [], in: family, snapshot: snapshot)
            }
            #expect(scanError?.code == .closed)
        }
    }

    @Test("a snapshot of another database is refused")
    func foreignSnapshot() throws {
        try withTemporaryDirectory { dir in
            let one = try Database.open(path: dir + "/one")
            let two = try Database.open(path: dir + "/two")
            defer {
                one.close()
                two.close()
            }
            let snapshot = try one.makeSnapshot()
            defer { snapshot.release() }
            let error = #expect(throws: StorageError.self) {
                try two.get([1], in: two.defaultFamily, snapshot: snapshot)
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    /// Readers on their own threads read through a snapshot while this thread releases it. Every read
    /// must see the snapshot's value or throw `.closed`; before reads took the snapshot's lock, a read
    /// could use freed read options (a crash) or silently read the latest state.
    @Test("reads racing release() see the snapshot or throw .closed")
    func readsRacingRelease() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            defer { db.close() }
            let family = db.defaultFamily
            for _ in 0..<20 {
                try db.put([1], [10], in: family)
                let snapshot = try db.makeSnapshot()
                try db.put([1], [11], in: family)
                let counts = RaceCounts()
                let done = DispatchSemaphore(value: 0)
                for reader in 0..<2 {
                    Thread {
                        defer { done.signal() }
                        while true {
                            do throws(StorageError) {
                                if reader == 0 {
                                    if try db.get([1], in: family, snapshot: snapshot) != [10] {
                                        counts.wrong.add(1, ordering: .relaxed)
                                    }
                                } else {
                                    if try db.entries(prefix: [], in: family, snapshot: snapshot).map(\.value) != [[10]]
                                    {
                                        counts.wrong.add(1, ordering: .relaxed)
                                    }
                                }
                                counts.reads.add(1, ordering: .relaxed)
                            } catch {
                                if error.code != .closed { counts.wrong.add(1, ordering: .relaxed) }
                                return
                            }
                        }
                    }.start()
                }
                let deadline = Date().addingTimeInterval(10)
                while counts.reads.load(ordering: .relaxed) < 20 && Date() < deadline { usleep(100) }
                snapshot.release()
                #expect(done.wait(timeout: .now() + 10) == .success)
                #expect(done.wait(timeout: .now() + 10) == .success)
                #expect(counts.reads.load(ordering: .relaxed) >= 20)
                #expect(counts.wrong.load(ordering: .relaxed) == 0)
            }
        }
    }

    /// The writer's thread used to hold it `unowned`: dropping the last reference before the thread
    /// got to `run()` freed the writer under it (an assertion in debug builds, a trap or worse after).
    @Test("the WAL writer stays alive until shut down, then is freed")
    func writerOwnership() async throws {
        try await withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            defer { db.close() }
            weak var weakWriter: GroupCommitWriter?
            // Dropped at once, before its thread has (most likely) started.
            do {
                let writer = GroupCommitWriter(database: db)
                weakWriter = writer
            }
            do {
                // Not shut down, so its thread still owns it: it must be alive and working.
                let writer = try #require(weakWriter)
                var batch = WriteBatch()
                batch.put([2], [2], in: db.defaultFamily)
                try await writer.write(batch)
                writer.shutdown()
            }
            // The thread drops its reference as it exits, shortly after `shutdown()` returns.
            let deadline = ContinuousClock.now + .seconds(10)
            while weakWriter != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(weakWriter == nil)
            #expect(try db.get([2], in: db.defaultFamily) == [2])
        }
    }
}

private final class RaceCounts: Sendable {
    let reads = Atomic<Int>(0)
    let wrong = Atomic<Int>(0)
}
