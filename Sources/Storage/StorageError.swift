/// An error from the storage layer: what failed, where, and RocksDB's own message when it gave one.
public struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The database could not be opened (missing, locked by another process, corrupt, no permission).
        case open
        /// A read or iteration failed.
        case read
        /// A write failed; nothing of the batch was applied.
        case write
        /// The database was already closed.
        case closed
        /// The caller passed something the storage layer cannot accept (unknown column family, bad range).
        case invalidArgument
        /// Stored bytes could not be decoded.
        case corruption
    }

    public var code: Code
    /// The operation that failed, e.g. `put(cf: ops)`.
    public var operation: String
    /// Human-readable detail, including RocksDB's message when there is one.
    public var message: String

    public init(_ code: Code, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    public var description: String { "storage \(code.rawValue) error in \(operation): \(message)" }
}
