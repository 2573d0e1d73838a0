import Foundation
import Storage
import Testing

@Suite("RocksDB binding")
struct DatabaseTests {
    @Test("put, get, delete and reopen after close keep what was written")
    func reopenKeepsData() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: ["ops", "state"])
            let ops = try db.columnFamily("ops")
            let state = try db.columnFamily("state")
            try db.put(Array("k1".utf8), Array("v1".utf8), in: ops)
            try db.put(Array("k1".utf8), Array("other".utf8), in: state)
            try db.put(Array("k2".utf8), Array("v2".utf8), in: ops)
            try db.delete(Array("k2".utf8), in: ops)
            db.close()
            #expect(!db.isOpen)

            let again = try Database.open(path: dir + "/db", columnFamilies: ["ops", "state"])
            defer { again.close() }
            #expect(try again.get(Array("k1".utf8), in: again.columnFamily("ops")) == Array("v1".utf8))
            #expect(try again.get(Array("k1".utf8), in: again.columnFamily("state")) == Array("other".utf8))
            #expect(try again.get(Array("k2".utf8), in: again.columnFamily("ops")) == nil)
        }
    }

    @Test("a family written a little at a time does not pin the write-ahead log: it stays near its bound")
    func walStaysBounded() throws {
        try withTemporaryDirectory { dir in
            var options = DatabaseOptions()
            options.maxTotalWALSize = 1 << 20
            // Small memtables: the busy family switches (and the WAL rolls over) often.
            options.writeBufferSize = 1 << 20
            options.syncWrites = false
            let db = try Database.open(path: dir + "/db", columnFamilies: ["busy", "quiet"], options: options)
            defer { db.close() }
            let busy = try db.columnFamily("busy")
            let quiet = try db.columnFamily("quiet")
            let value = [UInt8](repeating: 7, count: 64 << 10)
            // 16 MiB into one family (it flushes on its own), one small write to the other each time.
            for i in 0..<256 {
                var batch = WriteBatch()
                batch.put(Array("k\(i)".utf8), value, in: busy)
                batch.put(Array("q\(i)".utf8), [1], in: quiet)
                try db.write(batch)
            }
            // Flushes run in the background: wait (bounded) until the old log files are gone. A log
            // RocksDB deletes between the listing and its size counts as gone.
            func walBytes() throws -> Int {
                try FileManager.default.contentsOfDirectory(atPath: dir + "/db").filter { $0.hasSuffix(".log") }
                    .reduce(0) { total, name in
                        let size = try? FileManager.default.attributesOfItem(atPath: dir + "/db/" + name)[.size]
                        return total + ((size as? Int) ?? 0)
                    }
            }
            var bytes = try walBytes()
            // Without the bound the quiet family pins all 16 MiB of logs.
            for _ in 0..<600 where bytes > 8 << 20 {
                Thread.sleep(forTimeInterval: 0.1)
                bytes = try walBytes()
            }
            #expect(bytes <= 8 << 20, "the WAL holds \(bytes) bytes after 16 MiB of writes with a 1 MiB bound")
        }
    }

    @Test("operations after close throw .closed instead of crashing")
    func closedDatabaseThrows() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            db.close()
            db.close()
            #expect(throws: StorageError.self) { try db.put([1], [2], in: db.defaultFamily) }
            do {
                _ = try db.get([1], in: db.defaultFamily)
                Issue.record("get on a closed database returned")
            } catch let error as StorageError {
                #expect(error.code == .closed)
            }
        }
    }

    @Test("opening a missing database without create-if-missing carries RocksDB's message")
    func openErrorCarriesMessage() throws {
        try withTemporaryDirectory { dir in
            var options = DatabaseOptions()
            options.createIfMissing = false
            do {
                let db = try Database.open(path: dir + "/absent", options: options)
                db.close()
                Issue.record("open succeeded on a missing database")
            } catch let error as StorageError {
                #expect(error.code == .open)
                #expect(error.message.contains("does not exist"))
            }
        }
    }

    @Test("a second open of the same directory fails with the lock error, not a crash")
    func lockedDatabase() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            defer { db.close() }
            #expect(throws: StorageError.self) { try Database.open(path: dir + "/db") }
        }
    }

    @Test("big-endian keys iterate in numeric order and prefix scans stop at the prefix")
    func iterationOrder() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: ["ops"])
            defer { db.close() }
            let ops = try db.columnFamily("ops")
            let sequences: [UInt64] = [300, 1, 256, 65_536, 2, 255, UInt64(UInt32.max) + 7]
            var batch = WriteBatch()
            for shard: UInt16 in [1, 2, 3] {
                for seq in sequences {
                    let key = KeyBuilder().appending(bigEndian: shard).appending(bigEndian: seq)
                    batch.put(key.bytes, Array("\(shard)/\(seq)".utf8), in: ops)
                }
            }
            try db.write(batch)
            let prefix = KeyBuilder().appending(bigEndian: UInt16(2))
            var seen: [UInt64] = []
            try db.scan(prefix: prefix.bytes, in: ops) { (entry) throws(StorageError) -> Bool in
                var reader = KeyReader(entry.key)
                let shard = try reader.read(UInt16.self)
                #expect(shard == 2)
                seen.append(try reader.read(UInt64.self))
                return true
            }
            #expect(seen == sequences.sorted())

            // Starting mid-range and stopping early.
            let from = KeyBuilder().appending(bigEndian: UInt16(2)).appending(bigEndian: UInt64(256))
            var partial: [UInt64] = []
            try db.scan(prefix: prefix.bytes, from: from.bytes, in: ops) { (entry) throws(StorageError) -> Bool in
                var reader = KeyReader(entry.key)
                _ = try reader.read(UInt16.self)
                partial.append(try reader.read(UInt64.self))
                return partial.count < 2
            }
            #expect(partial == [256, 300])
        }
    }

    @Test("range delete removes exactly [start, end)")
    func rangeDelete() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            defer { db.close() }
            func key(_ n: UInt32) -> [UInt8] { KeyBuilder().appending(bigEndian: n).bytes }
            for n: UInt32 in 0..<10 { try db.put(key(n), [UInt8(n)], in: db.defaultFamily, sync: false) }
            try db.deleteRange(from: key(3), to: key(7), in: db.defaultFamily)
            let left = try db.entries(prefix: [], in: db.defaultFamily).map { $0.value[0] }
            #expect(left == [0, 1, 2, 7, 8, 9])
            #expect(throws: StorageError.self) { try db.deleteRange(from: key(5), to: key(5), in: db.defaultFamily) }
        }
    }

    @Test("a backward scan visits exactly the prefix's keys, last first, and stops when asked")
    func backwardScan() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: ["a"])
            defer { db.close() }
            let a = try db.columnFamily("a")
            let keys: [[UInt8]] = [
                [0, 9], [1], [1, 0], [1, 5, 7], [1, 0xFF], [1, 0xFF, 0xFF], [2], [2, 0], [0xFF], [0xFF, 1],
            ]
            for k in keys { try db.put(k, [UInt8(k.count)], in: a) }
            func backward(_ prefix: [UInt8], first n: Int = .max) throws -> [[UInt8]] {
                var seen: [[UInt8]] = []
                try db.scanBackward(prefix: prefix, in: a) { entry in
                    seen.append(entry.key)
                    #expect(entry.value == [UInt8(entry.key.count)])
                    return seen.count < n
                }
                return seen
            }
            for prefix: [UInt8] in [[1], [1, 0xFF], [2], [0xFF], [0], [3], [], [1, 5]] {
                let expected = Array(keys.filter { $0.starts(with: prefix) }.reversed())
                #expect(try backward(prefix) == expected, "prefix \(prefix)")
            }
            #expect(try backward([1], first: 2) == [[1, 0xFF, 0xFF], [1, 0xFF]])
        }
    }

    @Test("large values of a blob family are stored in blob files and read back after flushes, overwrites and a reopen")
    func largeValuesInBlobFiles() throws {
        try withTemporaryDirectory { dir in
            var options = DatabaseOptions()
            options.largeValueFamilies = ["big"]
            options.uncompressedFamilies = ["plain"]
            func value(_ i: Int, _ round: Int) -> [UInt8] {
                (0..<(40_000 + i)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7 &+ round) }
            }
            do {
                let db = try Database.open(path: dir + "/db", columnFamilies: ["big", "plain"], options: options)
                defer { db.close() }
                let big = try db.columnFamily("big"), plain = try db.columnFamily("plain")
                for round in 0..<3 {
                    for i in 0..<20 {
                        try db.put([UInt8(i)], value(i, round), in: big)
                        try db.put([UInt8(i)], [UInt8(i), UInt8(round)], in: plain)
                    }
                    try db.flush()
                }
            }
            let blobFiles = try FileManager.default.contentsOfDirectory(atPath: dir + "/db").filter {
                $0.hasSuffix(".blob")
            }
            #expect(!blobFiles.isEmpty, "the large values went to blob files")
            let db = try Database.open(path: dir + "/db", columnFamilies: ["big", "plain"], options: options)
            defer { db.close() }
            let big = try db.columnFamily("big"), plain = try db.columnFamily("plain")
            for i in 0..<20 {
                #expect(try db.get([UInt8(i)], in: big) == value(i, 2))
                #expect(try db.get([UInt8(i)], in: plain) == [UInt8(i), 2])
            }
        }
    }

    @Test("a write batch is atomic and a snapshot does not see later writes")
    func batchesAndSnapshots() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: ["a", "b"])
            defer { db.close() }
            let a = try db.columnFamily("a")
            let b = try db.columnFamily("b")
            var batch = WriteBatch()
            batch.put([1], [10], in: a)
            batch.put([1], [20], in: b)
            try db.write(batch)
            let snapshot = try db.makeSnapshot()
            defer { snapshot.release() }
            try db.put([1], [11], in: a)
            try db.put([2], [12], in: a)
            #expect(try db.get([1], in: a, snapshot: snapshot) == [10])
            #expect(try db.get([2], in: a, snapshot: snapshot) == nil)
            #expect(try db.entries(prefix: [], in: a, snapshot: snapshot).count == 1)
            #expect(try db.get([1], in: a) == [11])
            #expect(try db.get([1], in: b) == [20])
        }
    }

    @Test("a column family of another database is refused")
    func foreignFamily() throws {
        try withTemporaryDirectory { dir in
            let one = try Database.open(path: dir + "/one", columnFamilies: ["x"])
            let two = try Database.open(path: dir + "/two", columnFamilies: ["x"])
            defer {
                one.close()
                two.close()
            }
            let family = try one.columnFamily("x")
            #expect(throws: StorageError.self) { try two.put([1], [1], in: family) }
            #expect(throws: StorageError.self) { try one.columnFamily("missing") }
        }
    }

    @Test("every compression setting opens and round-trips")
    func compressionSettings() throws {
        try withTemporaryDirectory { dir in
            for compression in Compression.allCases {
                var options = DatabaseOptions()
                options.compression = compression
                options.syncWrites = false
                let db = try Database.open(path: dir + "/\(compression)", options: options)
                let value = [UInt8](repeating: 7, count: 4096)
                try db.put([9], value, in: db.defaultFamily)
                try db.flush()
                #expect(try db.get([9], in: db.defaultFamily) == value)
                db.close()
            }
        }
    }
}

@Suite("group commit")
struct GroupCommitTests {
    @Test("concurrent writers are all durable after they return, across a reopen")
    func concurrentWritesSurviveReopen() async throws {
        try await withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: ["ops"])
            let ops = try db.columnFamily("ops")
            let writer = GroupCommitWriter(database: db)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for i in 0..<50 {
                            var batch = WriteBatch()
                            let key = KeyBuilder().appending(bigEndian: UInt16(worker)).appending(bigEndian: UInt32(i))
                                .bytes
                            batch.put(key, [UInt8(i)], in: ops)
                            try await writer.write(batch)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let stats = writer.statistics
            #expect(stats.batches == 400)
            #expect(stats.groups <= 400)
            writer.shutdown()
            db.close()

            let again = try Database.open(path: dir + "/db", columnFamilies: ["ops"])
            defer { again.close() }
            #expect(try again.entries(prefix: [], in: again.columnFamily("ops")).count == 400)
        }
    }

    @Test("after a failed write every later write fails too, carrying the first failure as its cause")
    func failStopKeepsCause() async throws {
        try await withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            let writer = GroupCommitWriter(database: db)
            defer { writer.shutdown() }
            var batch = WriteBatch()
            batch.put([1], [1], in: db.defaultFamily)
            try await writer.write(batch)
            db.close()  // closed under the writer: its next write fails
            let first = try await #require(throws: StorageError.self) { try await writer.write(batch) }
            #expect(first.code == .closed)
            #expect(first.cause == nil)
            let later = try await #require(throws: StorageError.self) { try await writer.write(batch) }
            #expect(later.code == .closed)
            #expect(later.message.contains("an earlier WAL write failed"))
            #expect(later.cause as? StorageError == first)
            #expect("\(later)".hasSuffix("(cause: \(first))"))
        }
    }

    @Test("writes after shutdown fail with .closed")
    func writeAfterShutdown() async throws {
        try await withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db")
            let writer = GroupCommitWriter(database: db)
            writer.shutdown()
            var batch = WriteBatch()
            batch.put([1], [1], in: db.defaultFamily)
            await #expect(throws: StorageError.self) { try await writer.write(batch) }
            db.close()
        }
    }
}
