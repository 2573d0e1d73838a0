/// A request that cannot be accepted as sent: which rule it broke and where.
public struct WireError: Error, CustomStringConvertible, Sendable, Equatable {
    public var code: Infranaut_V1_StatusCode
    public var message: String

    public init(_ code: Infranaut_V1_StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func invalid(_ message: String) -> WireError { WireError(.invalidArgument, message) }

    public var description: String { message }
}

extension Infranaut_V1_Status {
    public static let ok: Infranaut_V1_Status = .with { $0.code = .ok }

    public init(code: Infranaut_V1_StatusCode, message: String) {
        self.init()
        self.code = code
        self.message = message
        self.retryable = code.isRetryable
    }

    /// A retryable "come back later" with a hint of how much later.
    public static func resourceExhausted(_ message: String, retryAfter: Duration) -> Infranaut_V1_Status {
        var status = Infranaut_V1_Status(code: .resourceExhausted, message: message)
        let (seconds, attoseconds) = retryAfter.components
        status.retryAfterMs = UInt32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        return status
    }
}

extension Infranaut_V1_StatusCode {
    /// Whether a client should retry a request answered with this code (same idempotency key).
    public var isRetryable: Bool {
        switch self {
        case .unavailable, .internal, .deadlineExceeded, .resourceExhausted: true
        default: false
        }
    }

    /// The code as written in protocol.md and printed by the CLI.
    public var name: String {
        switch self {
        case .ok: "OK"
        case .invalidArgument: "INVALID_ARGUMENT"
        case .notFound: "NOT_FOUND"
        case .tooLarge: "TOO_LARGE"
        case .unavailable: "UNAVAILABLE"
        case .internal: "INTERNAL"
        case .deadlineExceeded: "DEADLINE_EXCEEDED"
        case .permissionDenied: "PERMISSION_DENIED"
        case .resourceExhausted: "RESOURCE_EXHAUSTED"
        case .unspecified: "UNSPECIFIED"
        case .UNRECOGNIZED(let raw): "UNRECOGNIZED(\(raw))"
        }
    }
}
