internal import CRocksDB

/// A consistent point-in-time view of a database. Reads through it see exactly the writes that
/// were committed before it was taken. Release it with ``release()`` (or let it go out of scope);
/// reads through a released snapshot throw `.closed`.
///
/// Do not release a snapshot from inside a ``Database/scan(prefix:from:in:snapshot:_:)`` body that
/// reads through it: the release waits for that scan to finish.
public final class Snapshot: @unchecked Sendable {
    // Safe: `snapshot` and `readOptions` are set once in `init` and freed only in `release`, which
    // holds `releaseLock` exclusively. Every read through them goes through `withReadOptions`, which
    // holds `releaseLock` shared for the whole RocksDB call, so a release waits for the reads that
    // run and later reads find `nil`. Lock order, everywhere: `releaseLock`, then the database's lock.
    let database: Database
    private var snapshot: OpaquePointer?
    private var readOptions: OpaquePointer?
    private let releaseLock = ReadWriteLock()

    init(database: Database) throws(StorageError) {
        self.database = database
        let (snap, options) = try database.withHandle("snapshot") { db -> (OpaquePointer?, OpaquePointer?) in
            let snap = rocksdb_create_snapshot(db)
            let options = rocksdb_readoptions_create()
            rocksdb_readoptions_set_snapshot(options, snap)
            return (snap, options)
        }
        snapshot = snap
        readOptions = options
    }

    /// Releases the snapshot. Harmless when called twice or after the database closed.
    public func release() {
        releaseLock.withWriteLock {
            guard let snap = snapshot else { return }
            // When the database is already closed, RocksDB released its snapshots with it.
            try? database.withHandle("releaseSnapshot") { db in rocksdb_release_snapshot(db, snap) }
            rocksdb_readoptions_destroy(readOptions)
            snapshot = nil
            readOptions = nil
        }
    }

    /// Runs `body` with the snapshot's read options, which stay valid until it returns.
    func withReadOptions<T>(
        _ operation: String, _ body: (OpaquePointer) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        try releaseLock.withReadLock { () throws(StorageError) -> T in
            guard let readOptions else {
                throw StorageError(.closed, operation: operation, message: "the snapshot was released")
            }
            return try body(readOptions)
        }
    }

    deinit { release() }
}

/// One stored entry.
public struct KeyValue: Sendable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]
}

extension Database {
    /// Takes a snapshot of the database's current state.
    public func makeSnapshot() throws(StorageError) -> Snapshot {
        try Snapshot(database: self)
    }

    /// Calls `body` with every entry whose key starts with `prefix`, in ascending byte order, until
    /// `body` returns `false`. Keys compare as unsigned bytes, so big-endian integers sort numerically.
    ///
    /// The scan holds the database's shared lock: `close()` waits for it to finish.
    /// - Parameters:
    ///   - prefix: the key prefix; empty scans the whole family.
    ///   - start: optional first key to visit (must start with `prefix`); defaults to `prefix`.
    ///   - snapshot: read from this snapshot instead of the latest state.
    public func scan(
        prefix: [UInt8],
        from start: [UInt8]? = nil,
        in family: ColumnFamily,
        snapshot: Snapshot? = nil,
        _ body: (KeyValue) throws(StorageError) -> Bool
    ) throws(StorageError) {
        try withReadHandle("scan(cf: \(family))", snapshot: snapshot) { (db, readOptions) throws(StorageError) in
            let cf = try familyHandle(family, "scan(cf: \(family))")
            let iterator = rocksdb_create_iterator_cf(db, readOptions, cf)
            defer { rocksdb_iter_destroy(iterator) }
            let first = start ?? prefix
            first.withUnsafeBytes { k in
                rocksdb_iter_seek(iterator, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count)
            }
            while rocksdb_iter_valid(iterator) != 0 {
                guard let key = Self.key(at: iterator), key.starts(with: prefix) else { break }
                guard try body(KeyValue(key: key, value: Self.value(at: iterator))) else { return }
                rocksdb_iter_next(iterator)
            }
            try Self.checkIterator(iterator, "scan(cf: \(family))")
        }
    }

    /// Like ``scan(prefix:from:in:snapshot:_:)``, in descending key order from the last key with
    /// `prefix`: the newest entries of a time-ordered range first, without reading the older ones.
    public func scanBackward(
        prefix: [UInt8],
        in family: ColumnFamily,
        snapshot: Snapshot? = nil,
        _ body: (KeyValue) throws(StorageError) -> Bool
    ) throws(StorageError) {
        try withReadHandle("scanBackward(cf: \(family))", snapshot: snapshot) {
            (db, readOptions) throws(StorageError) in
            let cf = try familyHandle(family, "scanBackward(cf: \(family))")
            let iterator = rocksdb_create_iterator_cf(db, readOptions, cf)
            defer { rocksdb_iter_destroy(iterator) }
            // The first key after every key with the prefix: the prefix with its last byte below
            // 0xFF incremented (and what follows it dropped); none when it is all 0xFF.
            var bound = prefix
            while let last = bound.last, last == 0xFF { bound.removeLast() }
            if bound.isEmpty {
                rocksdb_iter_seek_to_last(iterator)
            } else {
                bound[bound.count - 1] += 1
                bound.withUnsafeBytes { k in
                    rocksdb_iter_seek_for_prev(iterator, k.baseAddress?.assumingMemoryBound(to: CChar.self), k.count)
                }
            }
            while rocksdb_iter_valid(iterator) != 0 {
                guard let key = Self.key(at: iterator) else { break }
                if !key.starts(with: prefix) {
                    // The bound itself (seek-for-prev lands on an equal key), or the range is done.
                    guard prefix.lexicographicallyPrecedes(key) else { break }
                    rocksdb_iter_prev(iterator)
                    continue
                }
                guard try body(KeyValue(key: key, value: Self.value(at: iterator))) else { return }
                rocksdb_iter_prev(iterator)
            }
            try Self.checkIterator(iterator, "scanBackward(cf: \(family))")
        }
    }

    private static func key(at iterator: OpaquePointer?) -> [UInt8]? {
        var length = 0
        guard let pointer = rocksdb_iter_key(iterator, &length) else { return nil }
        return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    private static func value(at iterator: OpaquePointer?) -> [UInt8] {
        var length = 0
        return rocksdb_iter_value(iterator, &length).map { pointer in
            pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            }
        } ?? []
    }

    private static func checkIterator(_ iterator: OpaquePointer?, _ operation: String) throws(StorageError) {
        var err: UnsafeMutablePointer<CChar>?
        rocksdb_iter_get_error(iterator, &err)
        if let message = takeError(&err) {
            throw StorageError(.read, operation: operation, message: message)
        }
    }

    /// Every entry whose key starts with `prefix`, in ascending key order (convenience for small ranges).
    public func entries(
        prefix: [UInt8], in family: ColumnFamily, snapshot: Snapshot? = nil
    ) throws(StorageError) -> [KeyValue] {
        var result: [KeyValue] = []
        try scan(prefix: prefix, in: family, snapshot: snapshot) { entry in
            result.append(entry)
            return true
        }
        return result
    }
}
