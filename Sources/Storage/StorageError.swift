/// An error from the storage layer: what failed, where, RocksDB's own message when it gave one,
/// and the error underneath when this one reports another.
public struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// The database could not be opened (missing, locked by another process, corrupt, no permission).
        case open
        /// A read or iteration failed.
        case read
        /// A write failed; nothing of the batch was applied.
        case write
        /// A value could not be serialized for storage (the cause says why); nothing was written.
        case encoding
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
    /// The error this one reports, when there is one: the protobuf library's error for a value that
    /// could not be encoded or decoded, the profile decoder's, or the earlier write that stopped the
    /// WAL writer.
    public var cause: (any Error)?

    public init(_ code: Code, operation: String, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.operation = operation
        self.message = message
        self.cause = cause
    }

    public var description: String {
        let text = "storage \(code.rawValue) error in \(operation): \(message)"
        guard let cause else { return text }
        return "\(text) (cause: \(cause))"
    }

    /// Equal code, operation and message, and causes that describe themselves alike.
    public static func == (lhs: StorageError, rhs: StorageError) -> Bool {
        lhs.code == rhs.code && lhs.operation == rhs.operation && lhs.message == rhs.message
            && lhs.cause.map { "\($0)" } == rhs.cause.map { "\($0)" }
    }
}
