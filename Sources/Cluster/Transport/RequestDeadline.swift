/// When a node stops working on a request: the time its sender waits (`Request.timeout_ms`),
/// capped by the node's own request timeout, counted from when the frame arrived less the time it
/// had already spent under way (known for peers' frames, see ``PeerClock``).
///
/// A request whose deadline has passed is not started, and a write not yet proposed by then is
/// not applied: its sender has given up waiting and will retry, so working on it late only delays
/// the requests behind it (a connection cut by a partition delivers its backlog when it heals).
public struct RequestDeadline: Sendable {
    /// The moment the request's sender stops waiting, on this node's clock.
    public let instant: ContinuousClock.Instant
    /// The time the request was given in all, for messages.
    public let budget: Duration

    /// - Parameters:
    ///   - timeoutMs: The request's `timeout_ms`; 0 means `cap`.
    ///   - transit: How long the frame was under way before it arrived.
    ///   - cap: The node's request timeout; no request gets longer.
    public init(
        timeoutMs: UInt32, transit: Duration = .zero, cap: Duration, arrivedAt: ContinuousClock.Instant = .now
    ) {
        budget = timeoutMs == 0 ? cap : min(cap, .milliseconds(timeoutMs))
        instant = arrivedAt + budget - max(.zero, transit)
    }

    /// A deadline `budget` from now.
    public init(in budget: Duration) {
        self.budget = budget
        instant = .now + budget
    }

    public var remaining: Duration { instant - .now }
    public var hasPassed: Bool { ContinuousClock.now >= instant }
}
