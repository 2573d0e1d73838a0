/// Tuning of the SWIM/Lifeguard membership protocol.
///
/// The defaults detect a crashed node in a 5-node cluster in about 2.5 s (median, every live
/// node declaring it dead) and in about 4 s in a 200-node cluster; see `docs/membership.md` for
/// the derivation and the measured figures.
public struct SWIMSettings: Hashable, Sendable {
    /// Time between two protocol periods; each period probes one member (randomized round-robin).
    /// Stretched by the local health multiplier. Default 1 s.
    public var probeInterval: Duration = .seconds(1)

    /// How long to wait for a direct `ack` before asking `indirectProbeCount` peers to probe,
    /// and again how long to wait for an indirect `ack` before suspecting the member.
    /// Stretched by the local health multiplier. Must be at most half of `probeInterval`. Default 500 ms.
    public var probeTimeout: Duration = .milliseconds(500)

    /// Number of peers asked to probe a member that missed a direct probe (SWIM's k). Default 3.
    public var indirectProbeCount: Int = 3

    /// Fraction of `probeTimeout` after which a `pingReq` receiver that got no answer from the
    /// target sends a `nack` to the requester (Lifeguard). Default 0.8.
    public var nackFraction: Double = 0.8

    /// Lifeguard α: the minimum suspicion timeout is `α × max(1, log10(n)) × probeInterval`, n being
    /// the number of live members. Default 1.0 (1 s up to 10 members, 2.3 s at 200).
    public var suspicionAlpha: Double = 1.0

    /// Lifeguard β: the maximum suspicion timeout is `β × minimum`. A suspicion starts at the maximum
    /// and shrinks logarithmically towards the minimum as independent confirmations arrive. Default 4.0.
    public var suspicionBeta: Double = 4.0

    /// Lifeguard k: the number of independent confirmations (distinct suspecting nodes, or `nack`s
    /// from indirect probers) after which a suspicion times out at the minimum. Default 3.
    ///
    /// A cluster cannot give more confirmations than it has members besides the suspecting node and
    /// the suspect (`n − 2`), so fewer are expected there: with 3 nodes the other survivor's one
    /// confirmation is all the evidence there can be, and it brings the minimum timeout, as three
    /// bring it with 5 nodes. At least one is always expected.
    public var suspicionConfirmations: Int = 3

    /// Upper bound of the local health multiplier (Lifeguard LHM). Probe interval and timeout are
    /// multiplied by `1 + score`; the score rises when this node misses acks or nacks or has to
    /// refute a suspicion, and falls with every successful probe. Default 8.
    public var maxLocalHealth: Int = 8

    /// Period of the gossip fan-out, which pushes pending updates to `gossipFanout` random members
    /// in addition to what rides on probes. Default 200 ms.
    public var gossipInterval: Duration = .milliseconds(200)

    /// Members each gossip round is sent to. Default 3.
    public var gossipFanout: Int = 3

    /// Dissemination λ: each update is piggybacked `λ × ceil(log10(n + 1))` times before it is
    /// dropped from the queue. Default 4.
    public var retransmitMultiplier: Int = 4

    /// Most updates piggybacked on a single message. Default 16.
    public var maxPiggyback: Int = 16

    /// Period of the full-state push-pull with one random live member, and of the reconnect
    /// attempt to one dead member or seed (so that partitioned views heal). Default 10 s.
    public var pushPullInterval: Duration = .seconds(10)

    /// How long dead and left members are kept (as tombstones) before being forgotten. Default 60 s.
    public var tombstoneTTL: Duration = .seconds(60)

    /// How often `join` messages are re-sent to the seeds while this node knows no other member.
    /// Default 1 s.
    public var joinRetryInterval: Duration = .seconds(1)

    /// Settings with the documented defaults.
    public init() {}

    /// The minimum suspicion timeout for a cluster of `memberCount` live members.
    public func minimumSuspicionTimeout(memberCount: Int) -> Duration {
        let factor = suspicionAlpha * max(1.0, decimalLog(Double(max(memberCount, 1))))
        return probeInterval.scaled(by: factor)
    }

    /// The maximum suspicion timeout for a cluster of `memberCount` live members.
    public func maximumSuspicionTimeout(memberCount: Int) -> Duration {
        minimumSuspicionTimeout(memberCount: memberCount).scaled(by: max(1.0, suspicionBeta))
    }

    /// Lifeguard's suspicion timeout after `confirmations` independent confirmations:
    /// `max(min, max − (max − min) × log(C + 1) / log(k + 1))`, where k is
    /// `suspicionConfirmations` capped at the `memberCount − 2` members that can confirm (at least 1).
    public func suspicionTimeout(memberCount: Int, confirmations: Int) -> Duration {
        let low = minimumSuspicionTimeout(memberCount: memberCount)
        let high = maximumSuspicionTimeout(memberCount: memberCount)
        let k = max(1, min(suspicionConfirmations, memberCount - 2))
        let fraction = decimalLog(Double(max(0, confirmations) + 1)) / decimalLog(Double(k + 1))
        let timeout = high - (high - low).scaled(by: min(1.0, fraction))
        return max(low, timeout)
    }

    /// How many times one update is piggybacked in a cluster of `memberCount` members.
    public func retransmitLimit(memberCount: Int) -> Int {
        let scale = Int(decimalLog(Double(max(memberCount, 1) + 1)).rounded(.up))
        return max(1, retransmitMultiplier * max(1, scale))
    }

    /// A conservative upper bound on the time from a crash until every live member has declared
    /// the crashed node dead, assuming no message loss and healthy (LHM 0) observers: every live
    /// member probes the crashed node within `2(n−1)−1` of its own protocol periods (randomized
    /// round-robin over `n−1` others), suspects it `2 × probeTimeout` later, and declares it dead
    /// at the latest when its own suspicion reaches the maximum timeout.
    public func detectionBound(memberCount n: Int) -> Duration {
        let periods = max(1, 2 * (n - 1) - 1)
        return probeInterval * periods + probeTimeout * 2 + maximumSuspicionTimeout(memberCount: n)
    }
}

extension Duration {
    /// This duration in seconds as a `Double`.
    public var inSeconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }

    /// This duration multiplied by a non-negative factor, rounded to the nanosecond.
    func scaled(by factor: Double) -> Duration {
        .nanoseconds(Int64((inSeconds * factor * 1e9).rounded()))
    }
}
