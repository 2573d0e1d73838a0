/// What this node knows of its peers' clocks, learned from the sealed replies to its own requests,
/// so that a peer's frame can be aged from the moment it was sealed even when the two clocks
/// disagree by more than the frame's timeout.
///
/// One exchange gives one sample, as NTP takes them: the request left at `t1` and the reply came
/// back at `t2` by this node's clock, and the peer sealed the reply at `tr` by its own; then the
/// peer's clock reads ahead of this one by `tr - (t1 + t2) / 2`, give or take `(t2 - t1) / 2`.
/// Only quick exchanges count (a round trip of at most ``maxRoundTripMs``): a peer seals its reply
/// after serving the request, so a slow answer says little about its clock. The latest quick
/// sample replaces the one before, so a clock that was stepped is relearned with the next one;
/// samples older than ``maxSampleAge`` are not used.
///
/// Memory: one sample per peer this node calls (its membership bounds them).
public struct PeerClock: Sendable {
    struct Sample: Sendable {
        /// The peer's clock minus this node's, in ms.
        var offsetMs: Int64
        /// Half the round trip: how far the offset may be off.
        var uncertaintyMs: Int64
        var takenAt: ContinuousClock.Instant
    }

    public static let maxRoundTripMs: UInt64 = 50
    public static let maxSampleAge: Duration = .seconds(60)
    /// Clock readings beyond this (year ~2255) are not believed (and would overflow the arithmetic).
    static let maxClockMs: UInt64 = 1 << 43

    private var samples: [String: Sample] = [:]

    public init() {}

    /// Takes the sample of one exchange with `peer` (the sender sealed into its reply).
    public mutating func record(
        peer: String, requestSentMs t1: UInt64, replySealedMs tr: UInt64, replyReceivedMs t2: UInt64,
        at now: ContinuousClock.Instant = .now
    ) {
        guard t2 >= t1, t2 - t1 <= Self.maxRoundTripMs, t2 <= Self.maxClockMs, tr <= Self.maxClockMs else { return }
        let middle = Int64(t1) + Int64(t2 - t1) / 2
        samples[peer] = Sample(offsetMs: Int64(tr) - middle, uncertaintyMs: Int64(t2 - t1 + 1) / 2, takenAt: now)
    }

    /// How long a frame `sender` sealed at `sentMs` (by its clock) has been under way when it is
    /// read at `nowMs` (by this node's), counting the doubt in the other clock in the frame's
    /// favour; nil when this node has no recent sample of that clock.
    public func transit(sender: String, sentMs: UInt64, nowMs: UInt64, at now: ContinuousClock.Instant = .now)
        -> Duration?
    {
        guard let sample = samples[sender], now - sample.takenAt <= Self.maxSampleAge, sentMs <= Self.maxClockMs,
            nowMs <= Self.maxClockMs
        else { return nil }
        let sentHere = Int64(sentMs) - sample.offsetMs
        let age = Int64(nowMs) - sentHere - sample.uncertaintyMs
        return .milliseconds(max(0, age))
    }
}
