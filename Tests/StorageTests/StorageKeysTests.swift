import Storage
import Testing

private func utf8(_ string: String) -> [UInt8] { Array(string.utf8) }

private let shards = [0, 1, 255, 256, 65_534]
private let strings = ["", "m", "fraud-model", "modèle ✓", "a/b/c", String(repeating: "x", count: 300)]

/// The exact bytes existing data directories hold. A failure here means a layout change: old data
/// dirs would no longer open correctly. Change these only together with a migration.
@Suite("storage layout: golden bytes")
struct StorageKeysGoldenTests {
    @Test("column families keep their names and order")
    func families() {
        // Families are only ever appended: a data dir without the newest one gets it at open.
        #expect(
            StorageKeys.families == ["ops", "models", "idempotency", "meta", "raft-log", "windows", "predictions"])
    }

    @Test(
        "predictions: shard, generation byte, length-prefixed model id, epoch as big-endian UInt32, length-prefixed id")
    func predictions() {
        #expect(
            StorageKeys.Predictions.key(shard: 2, generation: 1, model: "m", epoch: 0x0102_0304, id: "r-1")
                == [0x00, 0x02, 0x01, 0x00, 0x01] + utf8("m") + [1, 2, 3, 4] + [0x00, 0x03] + utf8("r-1"))
        // A model's range holds all its epochs, and no other model's keys.
        let range = StorageKeys.Predictions.modelRange(shard: 2, generation: 0, model: "m")
        let newest = StorageKeys.Predictions.key(
            shard: 2, generation: 0, model: "m", epoch: .max, id: String(repeating: "z", count: 256))
        #expect(range.start.lexicographicallyPrecedes(newest) && newest.lexicographicallyPrecedes(range.end))
        let other = StorageKeys.Predictions.key(shard: 2, generation: 0, model: "n", epoch: 0, id: "a")
        #expect(range.end.lexicographicallyPrecedes(other))
        // A generation's range holds every key of it, and none of the other generation's.
        let zero = StorageKeys.Predictions.generationRange(shard: 2, generation: 0)
        let one = StorageKeys.Predictions.key(shard: 2, generation: 1, model: "", epoch: 0, id: "")
        #expect(zero.start.lexicographicallyPrecedes(other) && other.lexicographicallyPrecedes(zero.end))
        #expect(!one.lexicographicallyPrecedes(zero.end))
        #expect(StorageKeys.Predictions.rekey(other, shard: 2, to: 1)?[2] == 1)
        #expect(StorageKeys.Predictions.rekey(other, shard: 3, to: 1) == nil)
        #expect(StorageKeys.Predictions.Generation.key(shard: 2) == utf8("predictions-generation/") + [0x00, 0x02])
    }

    @Test("a shard's keys start with the shard as big-endian UInt16")
    func shardPrefix() {
        #expect(StorageKeys.Shard.prefix(0) == [0x00, 0x00])
        #expect(StorageKeys.Shard.prefix(258) == [0x01, 0x02])
        #expect(StorageKeys.Shard.range(4).start == [0x00, 0x04])
        #expect(StorageKeys.Shard.range(4).end == [0x00, 0x05])
        #expect(StorageKeys.Shard.range(255).end == [0x01, 0x00])
    }

    @Test("ops: shard, sequence as big-endian UInt64")
    func ops() {
        #expect(StorageKeys.Ops.key(shard: 3, sequence: 0x0102_0304_0506_0708) == [0x00, 0x03, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(StorageKeys.Ops.key(shard: 0, sequence: 0) == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("models: shard, length-prefixed model id")
    func models() {
        #expect(StorageKeys.Models.key(shard: 258, model: "fraud") == [0x01, 0x02, 0x00, 0x05] + utf8("fraud"))
        #expect(StorageKeys.Models.key(shard: 1, model: "é") == [0x00, 0x01, 0x00, 0x02, 0xC3, 0xA9])
    }

    @Test("idempotency: shard, length-prefixed model id, length-prefixed key")
    func idempotency() {
        #expect(
            StorageKeys.Idempotency.key(shard: 1, model: "m", key: "k-1")
                == [0x00, 0x01, 0x00, 0x01] + utf8("m") + [0x00, 0x03] + utf8("k-1"))
    }

    @Test("meta checkpoint: \"checkpoint/\", shard; value sequence and term as big-endian UInt64")
    func checkpoint() {
        #expect(StorageKeys.Checkpoint.key(shard: 7) == utf8("checkpoint/") + [0x00, 0x07])
        #expect(
            StorageKeys.Checkpoint.value(sequence: 5, term: 0x0102) == [0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 1, 2])
    }

    @Test("meta promise: \"promise/\", shard; value term as big-endian UInt64, then the holder unprefixed")
    func promise() {
        #expect(StorageKeys.Promise.key(shard: 513) == utf8("promise/") + [0x02, 0x01])
        #expect(StorageKeys.Promise.value(term: 9, holder: "node-a") == [0, 0, 0, 0, 0, 0, 0, 9] + utf8("node-a"))
    }

    @Test("raft-log: shard, index as big-endian UInt64")
    func raftLog() throws {
        #expect(
            StorageKeys.RaftLog.key(shard: 3, index: 0x0102_0304_0506_0708) == [0x00, 0x03, 1, 2, 3, 4, 5, 6, 7, 8])
        let parsed = try StorageKeys.RaftLog.parse(StorageKeys.RaftLog.key(shard: 65_534, index: 9))
        #expect(parsed.shard == 65_534 && parsed.index == 9)
    }

    @Test("meta raft-hard: \"raft-hard/\", shard; value term as big-endian UInt64, then the vote unprefixed")
    func raftHardState() throws {
        #expect(StorageKeys.RaftHardState.key(shard: 513) == utf8("raft-hard/") + [0x02, 0x01])
        #expect(StorageKeys.RaftHardState.value(term: 9, votedFor: "n-2") == [0, 0, 0, 0, 0, 0, 0, 9] + utf8("n-2"))
        #expect(StorageKeys.RaftHardState.value(term: 1, votedFor: nil) == [0, 0, 0, 0, 0, 0, 0, 1])
        let voted = try StorageKeys.RaftHardState.parseValue(StorageKeys.RaftHardState.value(term: 4, votedFor: "a"))
        #expect(voted.term == 4 && voted.votedFor == "a")
        #expect(try StorageKeys.RaftHardState.parseValue([0, 0, 0, 0, 0, 0, 0, 4]).votedFor == nil)
        #expect(StorageKeys.RaftSnapshot.key(shard: 2) == utf8("raft-snapshot/") + [0x00, 0x02])
    }

    @Test("meta outbox and inbox: prefix, then the raw event id")
    func events() {
        #expect(StorageKeys.Outbox.prefix == utf8("outbox/"))
        #expect(StorageKeys.Outbox.key(eventID: "ev-1") == utf8("outbox/ev-1"))
        #expect(StorageKeys.Inbox.prefix == utf8("inbox/"))
        #expect(StorageKeys.Inbox.key(eventID: "ev-1") == utf8("inbox/ev-1"))
    }

    @Test("meta shard-count, replica-load and node-id")
    func nodeEntries() throws {
        #expect(StorageKeys.meta == "meta")
        #expect(StorageKeys.ShardCount.key == utf8("shard-count"))
        #expect(StorageKeys.ShardCount.value(16) == [0, 0, 0, 16])
        #expect(StorageKeys.ShardCount.value(65_535) == [0, 0, 0xFF, 0xFF])
        #expect(StorageKeys.ReplicaLoad.key == utf8("replica-load"))
        #expect(StorageKeys.ReplicaLoad.value(permille: 1_250) == [0, 0, 0x04, 0xE2])
        #expect(try StorageKeys.ReplicaLoad.parseValue(StorageKeys.ReplicaLoad.value(permille: 0)) == 0)
        #expect(StorageKeys.NodeID.key == utf8("node-id"))
        #expect(StorageKeys.NodeID.value("node-1a2b") == utf8("node-1a2b"))
    }

    @Test("a checkpoint written before terms (sequence only) reads with term 0")
    func checkpointWithoutTerm() throws {
        let old: [UInt8] = [0, 0, 0, 0, 0, 0, 0x01, 0x00]
        let parsed = try StorageKeys.Checkpoint.parseValue(old)
        #expect(parsed.sequence == 256)
        #expect(parsed.term == 0)
    }
}

@Suite("storage layout: build then parse")
struct StorageKeysRoundTripTests {
    @Test("ops keys", arguments: shards, [UInt64(0), 1, 2_000, UInt64.max])
    func ops(shard: Int, sequence: UInt64) throws {
        let parsed = try StorageKeys.Ops.parse(StorageKeys.Ops.key(shard: shard, sequence: sequence))
        #expect(parsed.shard == shard)
        #expect(parsed.sequence == sequence)
    }

    @Test("models keys", arguments: shards, strings)
    func models(shard: Int, model: String) throws {
        let parsed = try StorageKeys.Models.parse(StorageKeys.Models.key(shard: shard, model: model))
        #expect(parsed.shard == shard)
        #expect(parsed.model == model)
    }

    @Test("idempotency keys", arguments: strings, strings)
    func idempotency(model: String, key: String) throws {
        let parsed = try StorageKeys.Idempotency.parse(StorageKeys.Idempotency.key(shard: 42, model: model, key: key))
        #expect(parsed.shard == 42)
        #expect(parsed.model == model)
        #expect(parsed.key == key)
    }

    @Test("checkpoint and promise keys and values", arguments: shards)
    func perShardMeta(shard: Int) throws {
        #expect(try StorageKeys.Checkpoint.parse(StorageKeys.Checkpoint.key(shard: shard)) == shard)
        #expect(try StorageKeys.Promise.parse(StorageKeys.Promise.key(shard: shard)) == shard)
        let checkpoint = try StorageKeys.Checkpoint.parseValue(
            StorageKeys.Checkpoint.value(sequence: UInt64(shard) * 3, term: 7))
        #expect(checkpoint.sequence == UInt64(shard) * 3)
        #expect(checkpoint.term == 7)
        let promise = try StorageKeys.Promise.parseValue(
            StorageKeys.Promise.value(term: UInt64.max, holder: "node-\(shard)"))
        #expect(promise.term == UInt64.max)
        #expect(promise.holder == "node-\(shard)")
    }

    @Test("event ids, shard count and node id", arguments: strings)
    func nodeMeta(text: String) throws {
        #expect(try StorageKeys.Outbox.parse(StorageKeys.Outbox.key(eventID: text)) == text)
        #expect(try StorageKeys.Inbox.parse(StorageKeys.Inbox.key(eventID: text)) == text)
        #expect(StorageKeys.NodeID.parseValue(StorageKeys.NodeID.value(text)) == text)
        #expect(
            try StorageKeys.ShardCount.parseValue(StorageKeys.ShardCount.value(text.utf8.count + 1)) == text.utf8.count
                + 1)
    }

    @Test("keys of another layout are refused, not misread")
    func foreignKeys() {
        let op = StorageKeys.Ops.key(shard: 1, sequence: 1)
        #expect(throws: StorageError.self) { try StorageKeys.Ops.parse(op + [0]) }
        #expect(throws: StorageError.self) { try StorageKeys.Ops.parse(Array(op.dropLast())) }
        #expect(throws: StorageError.self) { try StorageKeys.Models.parse(op) }
        #expect(throws: StorageError.self) {
            try StorageKeys.Models.parse(StorageKeys.Idempotency.key(shard: 1, model: "m", key: "k"))
        }
        #expect(throws: StorageError.self) { try StorageKeys.Checkpoint.parse(StorageKeys.Promise.key(shard: 1)) }
        #expect(throws: StorageError.self) { try StorageKeys.Promise.parse(StorageKeys.Checkpoint.key(shard: 1)) }
        #expect(throws: StorageError.self) { try StorageKeys.Outbox.parse(StorageKeys.Inbox.key(eventID: "e")) }
        #expect(throws: StorageError.self) { try StorageKeys.Inbox.parse(StorageKeys.Outbox.key(eventID: "e")) }
    }
}

@Suite("storage layout: order in RocksDB")
struct StorageKeysOrderTests {
    @Test("a shard prefix scan yields exactly that shard's ops, in sequence order; its range deletes only them")
    func shardRangesAndOrder() throws {
        try withTemporaryDirectory { dir in
            let db = try Database.open(path: dir + "/db", columnFamilies: StorageKeys.families)
            defer { db.close() }
            let ops = try db.columnFamily(StorageKeys.Ops.family)
            var batch = WriteBatch()
            for shard in [0, 1, 2, 256] {
                for sequence: UInt64 in [300, 1, 256, 2, UInt64.max] {
                    batch.put(StorageKeys.Ops.key(shard: shard, sequence: sequence), [UInt8(shard % 256)], in: ops)
                }
            }
            try db.write(batch)
            let shardOne = try db.entries(prefix: StorageKeys.Shard.prefix(1), in: ops).map {
                try StorageKeys.Ops.parse($0.key)
            }
            #expect(shardOne.map { $0.shard } == [1, 1, 1, 1, 1])
            #expect(shardOne.map { $0.sequence } == [1, 2, 256, 300, UInt64.max])

            let (start, end) = StorageKeys.Shard.range(1)
            try db.deleteRange(from: start, to: end, in: ops)
            let left = try db.entries(prefix: [], in: ops).map { try StorageKeys.Ops.parse($0.key).shard }
            #expect(left == [0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 256, 256, 256, 256, 256])
        }
    }
}
