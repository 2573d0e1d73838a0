internal import CRocksDB

/// A group of writes applied atomically: after a crash either all of them are visible or none.
///
/// A plain value: build it anywhere, then hand it to ``Database/write(_:sync:)``.
public struct WriteBatch: Sendable {
    enum Operation: Sendable {
        case put(ColumnFamily, [UInt8], [UInt8])
        case delete(ColumnFamily, [UInt8])
        case deleteRange(ColumnFamily, [UInt8], [UInt8])
    }

    private(set) var operations: [Operation] = []
    /// Bytes of keys and values in the batch (an estimate of its WAL size).
    public private(set) var byteCount = 0

    public init() {}

    public var isEmpty: Bool { operations.isEmpty }
    public var count: Int { operations.count }

    public mutating func put(_ key: [UInt8], _ value: [UInt8], in family: ColumnFamily) {
        operations.append(.put(family, key, value))
        byteCount += key.count + value.count
    }

    public mutating func delete(_ key: [UInt8], in family: ColumnFamily) {
        operations.append(.delete(family, key))
        byteCount += key.count
    }

    /// Deletes every key `k` with `start <= k < end`.
    public mutating func deleteRange(from start: [UInt8], to end: [UInt8], in family: ColumnFamily) {
        operations.append(.deleteRange(family, start, end))
        byteCount += start.count + end.count
    }

    /// Appends another batch's operations after this one's.
    public mutating func append(contentsOf other: WriteBatch) {
        operations.append(contentsOf: other.operations)
        byteCount += other.byteCount
    }
}

extension Database {
    /// Reads the value stored under `key`, or `nil` when there is none.
    public func get(_ key: [UInt8], in family: ColumnFamily, snapshot: Snapshot? = nil) throws(StorageError) -> [UInt8]?
    {
        try withReadHandle("get(cf: \(family))", snapshot: snapshot) {
            (db, readOptions) throws(StorageError) -> [UInt8]? in
            let cf = try familyHandle(family, "get(cf: \(family))")
            var err: UnsafeMutablePointer<CChar>?
            var length = 0
            let value = key.withUnsafeBufferPointer { k in
                k.withMemoryRebound(to: CChar.self) { k in
                    rocksdb_get_cf(db, readOptions, cf, k.baseAddress, k.count, &length, &err)
                }
            }
            if let message = takeError(&err) {
                throw StorageError(.read, operation: "get(cf: \(family))", message: message)
            }
            guard let value else { return nil }
            defer { rocksdb_free(value) }
            return value.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        }
    }

    /// Stores `value` under `key`. `sync` overrides ``DatabaseOptions/syncWrites`` for this write.
    public func put(_ key: [UInt8], _ value: [UInt8], in family: ColumnFamily, sync: Bool? = nil) throws(StorageError) {
        var batch = WriteBatch()
        batch.put(key, value, in: family)
        try write(batch, sync: sync)
    }

    /// Removes `key`. Removing a key that is not there is not an error.
    public func delete(_ key: [UInt8], in family: ColumnFamily, sync: Bool? = nil) throws(StorageError) {
        var batch = WriteBatch()
        batch.delete(key, in: family)
        try write(batch, sync: sync)
    }

    /// Removes every key `k` with `start <= k < end`.
    public func deleteRange(
        from start: [UInt8], to end: [UInt8], in family: ColumnFamily, sync: Bool? = nil
    ) throws(StorageError) {
        guard start.lexicographicallyPrecedes(end) else {
            throw StorageError(
                .invalidArgument, operation: "deleteRange(cf: \(family))",
                message: "range start must sort before its end")
        }
        var batch = WriteBatch()
        batch.deleteRange(from: start, to: end, in: family)
        try write(batch, sync: sync)
    }

    /// Applies every operation of `batch` atomically.
    public func write(_ batch: WriteBatch, sync: Bool? = nil) throws(StorageError) {
        guard !batch.isEmpty else { return }
        let operation = "write(\(batch.count) ops)"
        try withHandle(operation) { (db) throws(StorageError) in
            let wb = rocksdb_writebatch_create()
            defer { rocksdb_writebatch_destroy(wb) }
            for op in batch.operations {
                switch op {
                case .put(let family, let key, let value):
                    let cf = try familyHandle(family, operation)
                    key.withUnsafeBytes { k in
                        value.withUnsafeBytes { v in
                            rocksdb_writebatch_put_cf(
                                wb, cf, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count,
                                v.baseAddress?.assumingMemoryBound(to: CChar.self), v.count)
                        }
                    }
                case .delete(let family, let key):
                    let cf = try familyHandle(family, operation)
                    key.withUnsafeBytes { k in
                        rocksdb_writebatch_delete_cf(
                            wb, cf, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count)
                    }
                case .deleteRange(let family, let start, let end):
                    let cf = try familyHandle(family, operation)
                    start.withUnsafeBytes { s in
                        end.withUnsafeBytes { e in
                            rocksdb_writebatch_delete_range_cf(
                                wb, cf, s.baseAddress?.assumingMemoryBound(to: CChar.self), s.count,
                                e.baseAddress?.assumingMemoryBound(to: CChar.self), e.count)
                        }
                    }
                }
            }
            var err: UnsafeMutablePointer<CChar>?
            rocksdb_write(db, writeOptions(sync: sync), wb, &err)
            if let message = takeError(&err) {
                throw StorageError(.write, operation: operation, message: message)
            }
        }
    }

    /// Flushes the memtables of every column family to SST files (used before measuring disk use and
    /// in tests; normal operation never needs it because the WAL makes writes durable).
    public func flush() throws(StorageError) {
        try withHandle("flush") { (db) throws(StorageError) in
            let flushOptions = rocksdb_flushoptions_create()
            defer { rocksdb_flushoptions_destroy(flushOptions) }
            rocksdb_flushoptions_set_wait(flushOptions, 1)
            for index in columnFamilyNames.indices {
                let family = ColumnFamily(name: columnFamilyNames[index], index: index, owner: ObjectIdentifier(self))
                let cf = try familyHandle(family, "flush")
                var err: UnsafeMutablePointer<CChar>?
                rocksdb_flush_cf(db, flushOptions, cf, &err)
                if let message = takeError(&err) {
                    throw StorageError(.write, operation: "flush(cf: \(family))", message: message)
                }
            }
        }
    }

    /// A consistent copy of the whole database at `path` (which must not exist), made by RocksDB's
    /// checkpoint: the memtables are flushed, SST files are hard-linked (copied across
    /// filesystems) and the rest copied, while writes go on.
    public func checkpoint(to path: String) throws(StorageError) {
        try withHandle("checkpoint(\(path))") { (db) throws(StorageError) in
            var err: UnsafeMutablePointer<CChar>?
            guard let checkpoint = rocksdb_checkpoint_object_create(db, &err) else {
                throw StorageError(
                    .write, operation: "checkpoint(\(path))", message: takeError(&err) ?? "no checkpoint object")
            }
            defer { rocksdb_checkpoint_object_destroy(checkpoint) }
            rocksdb_checkpoint_create(checkpoint, path, 0, &err)
            if let message = takeError(&err) {
                throw StorageError(.write, operation: "checkpoint(\(path))", message: message)
            }
        }
    }

    /// A RocksDB property of one column family, or `nil` when unknown.
    public func property(_ name: String, of family: ColumnFamily) throws(StorageError) -> String? {
        try withHandle("property(\(name), cf: \(family))") { (db) throws(StorageError) in
            let cf = try familyHandle(family, "property(\(name), cf: \(family))")
            guard let value = rocksdb_property_value_cf(db, cf, name) else { return nil }
            defer { rocksdb_free(value) }
            return String(cString: value)
        }
    }

    /// A RocksDB property such as `rocksdb.estimate-num-keys`, or `nil` when unknown.
    public func property(_ name: String) throws(StorageError) -> String? {
        try withHandle("property(\(name))") { db in
            guard let value = rocksdb_property_value(db, name) else { return nil }
            defer { rocksdb_free(value) }
            return String(cString: value)
        }
    }
}
