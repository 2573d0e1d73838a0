import Foundation
public import Storage
import SwiftProtobuf
import Wire

/// The node's RocksDB layout. One database per node, shared by its shards; every key starts with
/// the shard number (big-endian UInt16) so a shard's data is one contiguous range per family.
///
/// | family | key | value |
/// |---|---|---|
/// | `ops` | shard, sequence (UInt64 BE) | `StoredOp` |
/// | `models` | shard, model id | `ModelSnapshot` as of the shard's checkpoint |
/// | `idempotency` | shard, model id, key | `IdempotencyRecord` |
/// | `meta` | `"checkpoint"`, shard | checkpoint sequence, term of the op at it (UInt64 BE each) |
/// | `meta` | `"shard-count"` | UInt32 BE, fixed when the data dir is created |
///
/// Invariant: for every shard, `models` holds the state produced by applying every op with
/// sequence <= checkpoint, and `ops` holds every acknowledged op with sequence > checkpoint.
/// Both are written in one atomic batch when a checkpoint is taken, and ops are only deleted by
/// that batch, so a crash at any point leaves a state from which replay rebuilds exactly the
/// acknowledged history.
public struct ShardStore: Sendable {
    public let database: Database
    public let ops: ColumnFamily
    public let models: ColumnFamily
    public let idempotency: ColumnFamily
    public let meta: ColumnFamily
    /// Models held by the node's shards (every shard gets a copy of this store, so they share it).
    public let modelCount = ModelCount()

    public static let families = ["ops", "models", "idempotency", "meta"]

    public init(database: Database) throws(StorageError) {
        self.database = database
        ops = try database.columnFamily("ops")
        models = try database.columnFamily("models")
        idempotency = try database.columnFamily("idempotency")
        meta = try database.columnFamily("meta")
    }

    static func shardPrefix(_ shard: Int) -> [UInt8] { KeyBuilder().appending(bigEndian: UInt16(shard)).bytes }

    static func opKey(shard: Int, sequence: UInt64) -> [UInt8] {
        KeyBuilder().appending(bigEndian: UInt16(shard)).appending(bigEndian: sequence).bytes
    }

    static func modelKey(shard: Int, model: String) -> [UInt8] {
        KeyBuilder().appending(bigEndian: UInt16(shard)).appending(string: model).bytes
    }

    static func idempotencyKey(shard: Int, model: String, key: String) -> [UInt8] {
        KeyBuilder().appending(bigEndian: UInt16(shard)).appending(string: model).appending(string: key).bytes
    }

    static func checkpointKey(shard: Int) -> [UInt8] {
        Array("checkpoint/".utf8) + shardPrefix(shard)
    }

    static let shardCountKey = Array("shard-count".utf8)

    /// The shard count stored in the data dir, storing `requested` when there is none yet.
    public func shardCount(requested: Int) throws(StorageError) -> Int {
        if let stored = try database.get(Self.shardCountKey, in: meta) {
            var reader = KeyReader(stored)
            return Int(try reader.read(UInt32.self))
        }
        try database.put(Self.shardCountKey, KeyBuilder().appending(bigEndian: UInt32(requested)).bytes, in: meta, sync: true)
        return requested
    }

    static let nodeIDKey = Array("node-id".utf8)

    /// The node id: `requested` when given (and then stored), else the stored one, else a new one.
    public func nodeID(requested: String) throws(StorageError) -> String {
        if !requested.isEmpty {
            try database.put(Self.nodeIDKey, Array(requested.utf8), in: meta, sync: true)
            return requested
        }
        if let stored = try database.get(Self.nodeIDKey, in: meta) { return String(decoding: stored, as: UTF8.self) }
        let generated = "node-" + UUID().uuidString.prefix(8).lowercased()
        try database.put(Self.nodeIDKey, Array(generated.utf8), in: meta, sync: true)
        return generated
    }

    /// The checkpoint sequence and the term of the op at it (0 in data written before terms).
    func checkpoint(shard: Int) throws(StorageError) -> (sequence: UInt64, term: UInt64) {
        guard let bytes = try database.get(Self.checkpointKey(shard: shard), in: meta) else { return (0, 0) }
        var reader = KeyReader(bytes)
        let sequence = try reader.read(UInt64.self)
        let term = bytes.count >= 16 ? try reader.read(UInt64.self) : 0
        return (sequence, term)
    }

    static func checkpointValue(sequence: UInt64, term: UInt64) -> [UInt8] {
        KeyBuilder().appending(bigEndian: sequence).appending(bigEndian: term).bytes
    }

    /// The highest term this replica of the shard promised, and to which node (docs/replication.md).
    static func promiseKey(shard: Int) -> [UInt8] {
        Array("promise/".utf8) + shardPrefix(shard)
    }

    static func promiseValue(_ promise: TermPromise) -> [UInt8] {
        KeyBuilder().appending(bigEndian: promise.term).bytes + Array(promise.holder.utf8)
    }

    func promise(shard: Int) throws(StorageError) -> TermPromise {
        guard let bytes = try database.get(Self.promiseKey(shard: shard), in: meta) else { return TermPromise(term: 0, holder: "") }
        var reader = KeyReader(bytes)
        let term = try reader.read(UInt64.self)
        return TermPromise(term: term, holder: String(decoding: bytes.dropFirst(8), as: UTF8.self))
    }
}

func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ bytes: [UInt8], _ what: @autoclosure () -> String) throws(StorageError) -> M {
    do {
        return try M(serializedBytes: bytes)
    } catch {
        throw StorageError(.corruption, operation: "decode \(what())", message: "\(error)")
    }
}

func encode(_ message: some SwiftProtobuf.Message) throws(StorageError) -> [UInt8] {
    do {
        return try message.serializedBytes()
    } catch {
        throw StorageError(.write, operation: "encode \(type(of: message))", message: "\(error)")
    }
}

/// A replica's promise not to accept writes of a shard from any primary but `holder` in `term`,
/// nor from any primary in a lower term.
struct TermPromise: Equatable, Sendable {
    var term: UInt64
    var holder: String

    /// Whether a request from `node` written in `term` keeps this promise.
    func admits(term: UInt64, from node: String) -> Bool {
        term > self.term || (term == self.term && node == holder)
    }
}
