/// Tuning of one Raft group. Every replica of a group must use the same settings.
public struct RaftSettings: Sendable, Hashable {
    /// The minimum election timeout. A follower that hears no leader for a random time in
    /// `[electionTimeout, 2 × electionTimeout)` starts a pre-vote; a leader that has not heard
    /// from a majority within `electionTimeout` steps down (check-quorum). Default 1 s.
    public var electionTimeout: Duration = .seconds(1)
    /// How often a leader sends appends (heartbeats) to every follower. Default 250 ms; must be
    /// well below `electionTimeout`.
    public var heartbeatInterval: Duration = .milliseconds(250)
    /// The most entries one append carries. Default 64.
    public var maxEntriesPerAppend: Int = 64
    /// The most command bytes one append carries (at least one entry is always sent). Default 4 MiB.
    public var maxBytesPerAppend: Int = 4 << 20

    /// Whether an idle group stops heart-beating (RaftInstance+Quiescence.swift). The shell must
    /// then call `wake(now:)` when its failure detector suspects a replica's leader. Default false.
    public var quiesceWhenIdle = false

    /// Creates settings with the documented defaults.
    public init() {}

    /// Creates settings with the given timeouts.
    public init(electionTimeout: Duration, heartbeatInterval: Duration, maxEntriesPerAppend: Int = 64) {
        self.electionTimeout = electionTimeout
        self.heartbeatInterval = heartbeatInterval
        self.maxEntriesPerAppend = maxEntriesPerAppend
    }
}
