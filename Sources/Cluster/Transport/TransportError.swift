internal import CNNG

/// An error from the nng transport: what failed, on which address, and nng's own message.
public struct TransportError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// No answer arrived before the request's deadline.
        case timedOut
        /// The socket was closed (locally, by shutdown) while the operation was pending.
        case closed
        /// The address could not be listened on or dialed (malformed, in use, host not resolvable).
        case address
        /// Nothing accepts connections at the address (connection refused).
        case refused
        /// The connection dropped while the request was outstanding; it may or may not have been applied.
        case connectionLost
        /// A message exceeded the configured size limit.
        case tooLarge
        /// Any other nng failure; `message` carries nng's text.
        case failed
    }

    public var code: Code
    public var operation: String
    public var message: String

    public init(_ code: Code, operation: String, message: String) {
        self.code = code
        self.operation = operation
        self.message = message
    }

    /// Whether retrying the same request (with the same idempotency key) could succeed.
    public var isRetryable: Bool { code == .timedOut || code == .closed || code == .connectionLost }

    public var description: String { "transport \(code.rawValue) in \(operation): \(message)" }

    /// The error a ``RequestClient`` request gets when no answer arrives before its deadline; also
    /// for code that must fail a request the way a lost one fails (fault injection).
    public static func timedOut(operation: String) -> TransportError {
        TransportError(
            .timedOut, operation: operation,
            message: "no reply before the deadline (is the node running and reachable?)")
    }

    /// Maps an nng result code to an error, or `nil` for success.
    static func from(_ rv: Int32, _ operation: @autoclosure () -> String) -> TransportError? {
        guard rv != 0 else { return nil }
        let text = String(cString: nng_strerror(rv))
        let code: Code
        switch UInt32(rv) {
        case NNG_ETIMEDOUT.rawValue: code = .timedOut
        case NNG_ECLOSED.rawValue, NNG_ECANCELED.rawValue: code = .closed
        case NNG_EADDRINUSE.rawValue, NNG_EADDRINVAL.rawValue, NNG_ENOTSUP.rawValue:
            code = .address
        case NNG_ECONNREFUSED.rawValue: code = .refused
        case NNG_EMSGSIZE.rawValue: code = .tooLarge
        case NNG_ECONNRESET.rawValue, NNG_ECONNSHUT.rawValue, NNG_ECONNABORTED.rawValue: code = .connectionLost
        default: code = .failed
        }
        return TransportError(code, operation: operation(), message: text)
    }
}

/// Throws a ``TransportError`` for a non-zero nng result.
@inline(__always)
func check(_ rv: Int32, _ operation: @autoclosure () -> String) throws(TransportError) {
    if let error = TransportError.from(rv, operation()) { throw error }
}

/// The version of the nng library linked in, for example "1.11.0".
///
/// Infranaut needs 1.8.0 or later: 1.5.2 (Debian bookworm's) can hang forever in `nng_close`
/// (see docs/transport.md); scripts/install-nng.sh builds a fixed version.
public var nngVersion: String { String(cString: nng_version()) }
