internal import CRocksDB

#if canImport(Glibc)
    import Glibc
#endif

/// How RocksDB compresses data blocks on disk.
public enum Compression: String, Sendable, CaseIterable {
    case none, snappy, lz4, zstd

    var rocksValue: Int32 {
        switch self {
        case .none: Int32(rocksdb_no_compression)
        case .snappy: Int32(rocksdb_snappy_compression)
        case .lz4: Int32(rocksdb_lz4_compression)
        case .zstd: Int32(rocksdb_zstd_compression)
        }
    }
}

/// Settings used when opening a ``Database``.
public struct DatabaseOptions: Sendable {
    /// Create the database directory and files when they do not exist. Default `true`.
    public var createIfMissing = true
    /// Block compression. Default `.lz4` (cheap on CPU, about 2x on telemetry).
    public var compression: Compression = .lz4
    /// Column families stored without compression: their values are mostly sketch doubles, which
    /// LZ4 barely shrinks while compressing every flushed and compacted block (a third of a
    /// node's CPU under a spec's windows; docs/benchmarks.md, issue 11).
    public var uncompressedFamilies: Set<String> = []
    /// Column families whose values of at least ``largeValueBytes`` live in blob files (RocksDB's
    /// integrated BlobDB, garbage collected): compactions then move keys and references instead of
    /// rewriting the values. For families of large values overwritten often (model snapshots, which
    /// with a spec's open windows reach megabytes and are rewritten at every checkpoint); without
    /// it every L0 compaction rewrote all of them. Also uncompressed.
    public var largeValueFamilies: Set<String> = []
    /// The smallest value stored in a blob file in ``largeValueFamilies``. Default 16 KiB.
    public var largeValueBytes: UInt64 = 16 << 10
    /// Whether writes wait for the WAL to reach the disk (fsync) before returning. Default `true`:
    /// a write that returned survives a crash of the process or the machine. Individual writes may
    /// override it.
    public var syncWrites = true
    /// Background threads for flushes and compactions. Default 2.
    public var backgroundThreads: Int32 = 2
    /// Memtable size per column family before it is flushed. Default 16 MiB: the op log is
    /// trimmed by checkpoints, so small memtables flush little and keep the node's memory low.
    public var writeBufferSize = 16 << 20
    /// WAL size at which RocksDB flushes the column families that hold its oldest file. Default
    /// 64 MiB. Without it a family written a few KB per checkpoint (models, windows) never fills
    /// its memtable and pins every WAL file since its last flush: the WAL grew to ~800 MiB (6
    /// families × 16 MiB × 2 × 4) whatever the data kept.
    public var maxTotalWALSize: UInt64 = 64 << 20

    public init() {}
}

/// A named column family of an open database. Obtain one with ``Database/columnFamily(_:)``.
public struct ColumnFamily: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    let index: Int
    /// Identity of the database that issued it, so a family is never used on another database.
    let owner: ObjectIdentifier

    public var description: String { name }
}

/// A RocksDB database opened through the C API.
///
/// The class is the single owner of the C handles. Every operation holds a shared lock and checks
/// that the database is open; ``close()`` takes the lock exclusively, so no call ever runs on a freed
/// handle. Calls block the calling thread for the duration of the RocksDB call: run them on a thread
/// of their own (see ``GroupCommitWriter``), not on the cooperative pool, when they may take long.
public final class Database: @unchecked Sendable {
    // Safe: all mutable state (`db`, `families`, `isOpen`, live iterators) is guarded by `lock`;
    // RocksDB's handles are themselves thread-safe for concurrent reads and writes.
    let lock = ReadWriteLock()
    private var db: OpaquePointer?
    private var families: [OpaquePointer?]
    private let familyNames: [String]
    private let syncWriteOptions: OpaquePointer?
    private let noSyncWriteOptions: OpaquePointer?
    private let readOptions: OpaquePointer?
    public let path: String
    public let options: DatabaseOptions

    /// Opens (or creates) the database at `path` with the given column families. Families that do not
    /// exist yet are created; the `default` family always exists and need not be named.
    public static func open(
        path: String,
        columnFamilies: [String] = [],
        options: DatabaseOptions = DatabaseOptions()
    ) throws(StorageError) -> Database {
        try Database(path: path, columnFamilies: columnFamilies, options: options)
    }

    private init(path: String, columnFamilies: [String], options: DatabaseOptions) throws(StorageError) {
        self.path = path
        self.options = options
        var names = ["default"]
        for name in columnFamilies where !names.contains(name) {
            guard !name.isEmpty else {
                throw StorageError(.invalidArgument, operation: "open", message: "column family name is empty")
            }
            names.append(name)
        }
        familyNames = names

        let opts = rocksdb_options_create()
        defer { rocksdb_options_destroy(opts) }
        rocksdb_options_set_create_if_missing(opts, options.createIfMissing ? 1 : 0)
        rocksdb_options_set_create_missing_column_families(opts, 1)
        rocksdb_options_set_compression(opts, options.compression.rocksValue)
        rocksdb_options_increase_parallelism(opts, options.backgroundThreads)
        rocksdb_options_set_write_buffer_size(opts, options.writeBufferSize)
        rocksdb_options_set_max_total_wal_size(opts, options.maxTotalWALSize)

        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        var err: UnsafeMutablePointer<CChar>?
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        let plain = rocksdb_options_create_copy(opts)
        defer { rocksdb_options_destroy(plain) }
        rocksdb_options_set_compression(plain, Int32(rocksdb_no_compression))
        let blobs = rocksdb_options_create_copy(plain)
        defer { rocksdb_options_destroy(blobs) }
        rocksdb_options_set_enable_blob_files(blobs, 1)
        rocksdb_options_set_min_blob_size(blobs, options.largeValueBytes)
        rocksdb_options_set_enable_blob_gc(blobs, 1)
        let cOpts: [OpaquePointer?] = names.map { name in
            if options.largeValueFamilies.contains(name) { return blobs }
            return options.uncompressedFamilies.contains(name) ? plain : opts
        }
        let opened = cNames.withUnsafeBufferPointer { namePtr in
            namePtr.withMemoryRebound(to: UnsafePointer<CChar>?.self) { constNames in
                cOpts.withUnsafeBufferPointer { optPtr in
                    handles.withUnsafeMutableBufferPointer { handlePtr in
                        rocksdb_open_column_families(
                            opts, path, Int32(names.count), constNames.baseAddress, optPtr.baseAddress,
                            handlePtr.baseAddress, &err)
                    }
                }
            }
        }
        if let message = takeError(&err) {
            throw StorageError(.open, operation: "open(\(path))", message: message)
        }
        guard let opened else {
            throw StorageError(.open, operation: "open(\(path))", message: "RocksDB returned no handle")
        }
        db = opened
        families = handles

        syncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)
        noSyncWriteOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(noSyncWriteOptions, 0)
        readOptions = rocksdb_readoptions_create()
    }

    deinit {
        assert(db == nil, "Database at \(path) was not closed before it was released")
        if db != nil { close() }
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_writeoptions_destroy(noSyncWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
    }

    /// Whether the database is still open.
    public var isOpen: Bool { lock.withReadLock { db != nil } }

    /// Names of the column families the database was opened with, `default` first.
    public var columnFamilyNames: [String] { familyNames }

    /// The family called `name`.
    public func columnFamily(_ name: String) throws(StorageError) -> ColumnFamily {
        guard let index = familyNames.firstIndex(of: name) else {
            throw StorageError(
                .invalidArgument, operation: "columnFamily(\(name))",
                message:
                    "unknown column family; open the database with it (known: \(familyNames.joined(separator: ", ")))")
        }
        return ColumnFamily(name: name, index: index, owner: ObjectIdentifier(self))
    }

    /// The `default` column family.
    public var defaultFamily: ColumnFamily { ColumnFamily(name: "default", index: 0, owner: ObjectIdentifier(self)) }

    /// Closes the database, releasing every handle. Waits for running calls; later calls throw `.closed`.
    /// Closing twice is harmless.
    public func close() {
        lock.withWriteLock {
            guard let handle = db else { return }
            for family in families { rocksdb_column_family_handle_destroy(family) }
            families = []
            rocksdb_close(handle)
            db = nil
        }
    }

    // MARK: - Internal access for batches, iterators and snapshots

    /// Runs `body` with the open handle and the family's handle, under the shared lock.
    func withHandle<T>(
        _ operation: @autoclosure () -> String,
        _ body: (OpaquePointer) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        try lock.withReadLock { () throws(StorageError) -> T in
            guard let handle = db else {
                throw StorageError(.closed, operation: operation(), message: "the database at \(path) is closed")
            }
            return try body(handle)
        }
    }

    /// Runs `body` with the open handle and the read options of `snapshot` (of the latest state when
    /// `nil`), both valid until it returns: a released snapshot throws `.closed` instead.
    func withReadHandle<T>(
        _ operation: String, snapshot: Snapshot?,
        _ body: (OpaquePointer, OpaquePointer?) throws(StorageError) -> T
    ) throws(StorageError) -> T {
        guard let snapshot else {
            return try withHandle(operation) { (db) throws(StorageError) -> T in try body(db, readOptions) }
        }
        guard snapshot.database === self else {
            throw StorageError(
                .invalidArgument, operation: operation, message: "the snapshot belongs to another database")
        }
        // The snapshot's lock first, then the database's: the order `Snapshot.release()` takes them.
        return try snapshot.withReadOptions(operation) { (options) throws(StorageError) -> T in
            try withHandle(operation) { (db) throws(StorageError) -> T in try body(db, options) }
        }
    }

    func familyHandle(_ family: ColumnFamily, _ operation: @autoclosure () -> String) throws(StorageError)
        -> OpaquePointer?
    {
        guard family.owner == ObjectIdentifier(self), family.index < families.count else {
            throw StorageError(
                .invalidArgument, operation: operation(),
                message: "column family \(family.name) belongs to another database")
        }
        return families[family.index]
    }

    func writeOptions(sync: Bool?) -> OpaquePointer? {
        (sync ?? options.syncWrites) ? syncWriteOptions : noSyncWriteOptions
    }
}

/// Copies RocksDB's error string (if any), frees it, and clears the pointer.
func takeError(_ err: inout UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer = err else { return nil }
    let message = String(cString: pointer)
    rocksdb_free(pointer)
    err = nil
    return message
}
