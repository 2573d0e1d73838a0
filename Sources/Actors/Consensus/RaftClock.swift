import Cluster

/// The time every Raft replica of the process reads: a monotonic clock as a `Duration` since the
/// process started. The Raft core takes `now` as such a duration and never reads a clock itself.
enum RaftClock {
    private static let epoch = ContinuousClock.now

    static var now: Duration { ContinuousClock.now - epoch }
}
