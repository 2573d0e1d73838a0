/// The node's RocksDB key layout, in one place: every column family's keys and every `meta` entry,
/// with functions that build them and parse them back. Nothing else builds key bytes.
///
/// One database per node (`<data-dir>/rocksdb`), shared by its shards. In `ops`, `models` and
/// `idempotency` every key starts with the shard number as a big-endian `UInt16`, so a shard is one
/// contiguous key range per family. Strings inside keys are length-prefixed (`UInt16` BE, see
/// ``KeyBuilder``) so no key is a prefix of another; integers are big-endian so they sort
/// numerically under RocksDB's bytewise comparator.
///
/// | family | key | value |
/// |---|---|---|
/// | `ops` | shard, sequence (`UInt64` BE) | `StoredOp` |
/// | `models` | shard, model id | `ModelSnapshot` as of the shard's checkpoint |
/// | `idempotency` | shard, model id, key | `IdempotencyRecord` |
/// | `meta` | `"checkpoint/"`, shard | checkpoint sequence, term of the op at it (`UInt64` BE each) |
/// | `meta` | `"promise/"`, shard | promised term (`UInt64` BE), then the holder's node id (raw UTF-8) |
/// | `meta` | `"outbox/"`, event id (raw UTF-8) | `ClusterEvent` not yet acknowledged by every coordinator |
/// | `meta` | `"inbox/"`, event id (raw UTF-8) | `ReceivedEvent` stored by this coordinator |
/// | `meta` | `"shard-count"` | `UInt32` BE, written once |
/// | `meta` | `"node-id"` | the node id (raw UTF-8) |
/// | `meta` | `"consensus"` | `raft`: the shards are Raft groups (absent in older data dirs, which are refused) |
/// | `raft-log` | shard, index (`UInt64` BE) | `RaftLogEntry` of the shard's Raft group |
/// | `windows` | shard, model id, window start (`UInt64` BE, sign bit flipped), series | a closed window's result (Monitoring's `WindowResult`, serialized) |
/// | `meta` | `"raft-hard/"`, shard | current term (`UInt64` BE), then the vote in it (raw UTF-8; empty: none) |
/// | `meta` | `"raft-snapshot/"`, shard | `RaftSnapshotMeta`: the last log entry `models` and `idempotency` cover |
///
/// Compatibility: these bytes are what existing data directories hold. Changing any of them makes
/// old data unreadable; `StorageKeysTests` pins every one of them (golden bytes).
public enum StorageKeys {
    /// The column families a node opens, in order.
    public static let families = [
        Ops.family, Models.family, Idempotency.family, meta, RaftLog.family, Windows.family, Predictions.family,
    ]

    /// The family holding node-wide and per-shard metadata (checkpoints, promises, events, ids).
    public static let meta = "meta"

    /// The range of every key of one shard in `ops`, `models` and `idempotency`.
    public enum Shard {
        /// The first bytes of every key of `shard`: the shard as `UInt16` BE.
        public static func prefix(_ shard: Int) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).bytes
        }

        /// `[start, end)` holds exactly the keys of `shard` (for range deletes). `shard` is at most
        /// 65534 (shard counts stop at 65535), so the end is the next shard's prefix.
        public static func range(_ shard: Int) -> (start: [UInt8], end: [UInt8]) {
            (prefix(shard), prefix(shard + 1))
        }
    }

    /// `ops`: shard, sequence (`UInt64` BE); key order is sequence order within a shard.
    public enum Ops {
        public static let family = "ops"

        public static func key(shard: Int, sequence: UInt64) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(bigEndian: sequence).bytes
        }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> (shard: Int, sequence: UInt64) {
            var reader = KeyReader(key)
            let shard = try reader.read(UInt16.self)
            let sequence = try reader.read(UInt64.self)
            try reader.expectEnd()
            return (Int(shard), sequence)
        }
    }

    /// `raft-log`: shard, index (`UInt64` BE); key order is log order within a shard.
    public enum RaftLog {
        public static let family = "raft-log"

        public static func key(shard: Int, index: UInt64) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(bigEndian: index).bytes
        }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> (shard: Int, index: UInt64) {
            var reader = KeyReader(key)
            let shard = try reader.read(UInt16.self)
            let index = try reader.read(UInt64.self)
            try reader.expectEnd()
            return (Int(shard), index)
        }
    }

    /// `meta` `"raft-hard/"`, shard: the Raft term a shard's replica is in and the vote it cast in it.
    public enum RaftHardState {
        public static let prefix = Array("raft-hard/".utf8)

        public static func key(shard: Int) -> [UInt8] { prefix + Shard.prefix(shard) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> Int {
            try StorageKeys.shard(after: prefix, in: key, "raft-hard")
        }

        /// The term (`UInt64` BE) followed by the vote's node id, not length-prefixed (empty: no vote).
        public static func value(term: UInt64, votedFor: String?) -> [UInt8] {
            KeyBuilder().appending(bigEndian: term).bytes + Array((votedFor ?? "").utf8)
        }

        public static func parseValue(_ bytes: [UInt8]) throws(StorageError) -> (term: UInt64, votedFor: String?) {
            var reader = KeyReader(bytes)
            let term = try reader.read(UInt64.self)
            let vote = String(decoding: bytes.dropFirst(8), as: UTF8.self)
            return (term, vote.isEmpty ? nil : vote)
        }
    }

    /// `meta` `"raft-snapshot/"`, shard: the Raft entry (index, term, voters) that the shard's state in
    /// `models` and `idempotency` is the result of; entries up to it are no longer in `raft-log`.
    public enum RaftSnapshot {
        public static let prefix = Array("raft-snapshot/".utf8)

        public static func key(shard: Int) -> [UInt8] { prefix + Shard.prefix(shard) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> Int {
            try StorageKeys.shard(after: prefix, in: key, "raft-snapshot")
        }
    }

    /// `models`: shard, model id (length-prefixed).
    public enum Models {
        public static let family = "models"

        public static func key(shard: Int, model: String) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(string: model).bytes
        }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> (shard: Int, model: String) {
            var reader = KeyReader(key)
            let shard = try reader.read(UInt16.self)
            let model = try reader.readString()
            try reader.expectEnd()
            return (Int(shard), model)
        }
    }

    /// `windows`: shard, model id, the window's start (ms since 1970 as `UInt64` BE with the sign bit
    /// flipped, so earlier windows sort first, negative times included), then its series: version,
    /// segment column (empty for the whole model), segment kind (`UInt8`: 0 whole model, 1 value,
    /// 2 missing, 3 other) and segment value. A model's results are one contiguous range, in time
    /// order, so retention is one range delete.
    public enum Windows {
        public static let family = "windows"

        public struct Series: Sendable, Hashable {
            public var version: String
            public var segmentColumn: String
            public var segmentKind: UInt8
            public var segmentValue: String

            public init(version: String, segmentColumn: String = "", segmentKind: UInt8 = 0, segmentValue: String = "")
            {
                self.version = version
                self.segmentColumn = segmentColumn
                self.segmentKind = segmentKind
                self.segmentValue = segmentValue
            }
        }

        public static func modelPrefix(shard: Int, model: String) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(string: model).bytes
        }

        /// The first key of `model`'s results starting at `startMs` or later (range deletes end here).
        public static func start(shard: Int, model: String, startMs: Int64) -> [UInt8] {
            modelPrefix(shard: shard, model: model) + KeyBuilder().appending(bigEndian: sortable(startMs)).bytes
        }

        public static func key(shard: Int, model: String, startMs: Int64, series: Series) -> [UInt8] {
            start(shard: shard, model: model, startMs: startMs)
                + KeyBuilder().appending(string: series.version).appending(string: series.segmentColumn)
                .appending(bigEndian: series.segmentKind).appending(string: series.segmentValue).bytes
        }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> (
            shard: Int, model: String, startMs: Int64, series: Series
        ) {
            var reader = KeyReader(key)
            let shard = try reader.read(UInt16.self)
            let model = try reader.readString()
            let start = Int64(bitPattern: try reader.read(UInt64.self) ^ (1 << 63))
            let version = try reader.readString()
            let column = try reader.readString()
            let kind = try reader.readUInt8()
            let value = try reader.readString()
            try reader.expectEnd()
            return (
                Int(shard), model, start,
                Series(version: version, segmentColumn: column, segmentKind: kind, segmentValue: value)
            )
        }

        static func sortable(_ ms: Int64) -> UInt64 { UInt64(bitPattern: ms) ^ (1 << 63) }
    }

    /// `predictions`: shard, generation (one byte), model id (length-prefixed), epoch (big-endian
    /// UInt32), prediction id (length-prefixed). A model's epochs are contiguous and ascending, so
    /// expiry is one range delete below the oldest live epoch. A shard's records live under its
    /// active generation (``Generation``); a snapshot being received is written under the other
    /// one, and its install switches them (docs/performance.md, "Snapshots").
    public enum Predictions {
        public static let family = "predictions"

        /// Every key of one generation (0 or 1) of `shard`.
        public static func generationRange(shard: Int, generation: UInt8) -> (start: [UInt8], end: [UInt8]) {
            precondition(generation < 0xFF, "generations are 0 and 1")
            let prefix = Shard.prefix(shard)
            return (prefix + [generation], prefix + [generation + 1])
        }

        public static func epochStart(shard: Int, generation: UInt8, model: String, epoch: UInt32) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(bigEndian: generation).appending(string: model)
                .appending(bigEndian: epoch).bytes
        }

        public static func key(shard: Int, generation: UInt8, model: String, epoch: UInt32, id: String) -> [UInt8] {
            epochStart(shard: shard, generation: generation, model: model, epoch: epoch)
                + KeyBuilder().appending(string: id).bytes
        }

        /// Every key of `model` (for a purge): its first epoch to past its last.
        public static func modelRange(shard: Int, generation: UInt8, model: String) -> (start: [UInt8], end: [UInt8]) {
            (
                epochStart(shard: shard, generation: generation, model: model, epoch: 0),
                epochStart(shard: shard, generation: generation, model: model, epoch: .max)
                    + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
            )
        }

        /// `key` (of any generation of `shard`) moved to `generation`; nil when it is not a key of
        /// `shard`.
        public static func rekey(_ key: [UInt8], shard: Int, to generation: UInt8) -> [UInt8]? {
            let prefix = Shard.prefix(shard)
            guard key.count > prefix.count, key.starts(with: prefix) else { return nil }
            var moved = key
            moved[prefix.count] = generation
            return moved
        }

        /// `meta` `"predictions-generation/"`, shard: the shard's active generation (one byte; 0
        /// when absent).
        public enum Generation {
            public static let prefix = Array("predictions-generation/".utf8)
            public static func key(shard: Int) -> [UInt8] { prefix + Shard.prefix(shard) }
        }
    }

    /// `idempotency`: shard, model id, idempotency key (both length-prefixed).
    public enum Idempotency {
        public static let family = "idempotency"

        public static func key(shard: Int, model: String, key: String) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt16(shard)).appending(string: model).appending(string: key).bytes
        }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> (shard: Int, model: String, key: String) {
            var reader = KeyReader(key)
            let shard = try reader.read(UInt16.self)
            let model = try reader.readString()
            let idempotencyKey = try reader.readString()
            try reader.expectEnd()
            return (Int(shard), model, idempotencyKey)
        }
    }

    /// `meta` `"checkpoint/"`, shard: the sequence every op up to which is in `models`, and its term.
    public enum Checkpoint {
        public static let prefix = Array("checkpoint/".utf8)

        public static func key(shard: Int) -> [UInt8] { prefix + Shard.prefix(shard) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> Int {
            try shard(after: prefix, in: key, "checkpoint")
        }

        public static func value(sequence: UInt64, term: UInt64) -> [UInt8] {
            KeyBuilder().appending(bigEndian: sequence).appending(bigEndian: term).bytes
        }

        /// The term is 0 in values written before terms existed (8 bytes, sequence only).
        public static func parseValue(_ bytes: [UInt8]) throws(StorageError) -> (sequence: UInt64, term: UInt64) {
            var reader = KeyReader(bytes)
            let sequence = try reader.read(UInt64.self)
            let term = bytes.count >= 16 ? try reader.read(UInt64.self) : 0
            return (sequence, term)
        }
    }

    /// `meta` `"promise/"`, shard: the highest replication term this replica promised and to whom.
    public enum Promise {
        public static let prefix = Array("promise/".utf8)

        public static func key(shard: Int) -> [UInt8] { prefix + Shard.prefix(shard) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> Int {
            try shard(after: prefix, in: key, "promise")
        }

        /// The term (`UInt64` BE) followed by the holder's node id, not length-prefixed.
        public static func value(term: UInt64, holder: String) -> [UInt8] {
            KeyBuilder().appending(bigEndian: term).bytes + Array(holder.utf8)
        }

        public static func parseValue(_ bytes: [UInt8]) throws(StorageError) -> (term: UInt64, holder: String) {
            var reader = KeyReader(bytes)
            let term = try reader.read(UInt64.self)
            return (term, String(decoding: bytes.dropFirst(8), as: UTF8.self))
        }
    }

    /// `meta` `"outbox/"`, event id: an event published here that some coordinator has not acknowledged.
    public enum Outbox {
        public static let prefix = Array("outbox/".utf8)

        public static func key(eventID: String) -> [UInt8] { prefix + Array(eventID.utf8) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> String {
            try eventID(after: prefix, in: key, "outbox")
        }
    }

    /// `meta` `"inbox/"`, event id: an event this coordinator received and stored.
    public enum Inbox {
        public static let prefix = Array("inbox/".utf8)

        public static func key(eventID: String) -> [UInt8] { prefix + Array(eventID.utf8) }

        public static func parse(_ key: [UInt8]) throws(StorageError) -> String {
            try eventID(after: prefix, in: key, "inbox")
        }
    }

    /// `meta` `"shard-count"`: the node's shard count, fixed when the data dir is created.
    public enum ShardCount {
        public static let key = Array("shard-count".utf8)

        public static func value(_ count: Int) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt32(count)).bytes
        }

        public static func parseValue(_ bytes: [UInt8]) throws(StorageError) -> Int {
            var reader = KeyReader(bytes)
            return Int(try reader.read(UInt32.self))
        }
    }

    /// `meta` `"replica-load"`: the placement's bounded-load factor for replicas in thousandths
    /// (0: none), fixed when the data dir is created. Absent in data dirs that predate it, whose
    /// clusters place replicas without a bound.
    public enum ReplicaLoad {
        public static let key = Array("replica-load".utf8)

        public static func value(permille: Int) -> [UInt8] {
            KeyBuilder().appending(bigEndian: UInt32(permille)).bytes
        }

        public static func parseValue(_ bytes: [UInt8]) throws(StorageError) -> Int {
            var reader = KeyReader(bytes)
            return Int(try reader.read(UInt32.self))
        }
    }

    /// `meta` `"consensus"`: present (value `raft`) in every data dir whose shards are Raft groups;
    /// written when the data dir is created.
    public enum Consensus {
        public static let key = Array("consensus".utf8)
        public static let value = Array("raft".utf8)
    }

    /// `meta` `"node-id"`: the node's id in the cluster.
    public enum NodeID {
        public static let key = Array("node-id".utf8)

        public static func value(_ id: String) -> [UInt8] { Array(id.utf8) }

        public static func parseValue(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
    }

    /// The shard of a `meta` key made of `prefix` and the shard (`UInt16` BE).
    private static func shard(after prefix: [UInt8], in key: [UInt8], _ what: String) throws(StorageError) -> Int {
        guard key.starts(with: prefix) else { throw notA(what, key) }
        var reader = KeyReader(Array(key.dropFirst(prefix.count)))
        let shard = try reader.read(UInt16.self)
        try reader.expectEnd()
        return Int(shard)
    }

    private static func eventID(after prefix: [UInt8], in key: [UInt8], _ what: String) throws(StorageError) -> String {
        guard key.starts(with: prefix) else { throw notA(what, key) }
        return String(decoding: key.dropFirst(prefix.count), as: UTF8.self)
    }

    private static func notA(_ what: String, _ key: [UInt8]) -> StorageError {
        StorageError(
            .corruption, operation: "decode \(what) key", message: "key of \(key.count) bytes lacks the \(what) prefix")
    }
}
