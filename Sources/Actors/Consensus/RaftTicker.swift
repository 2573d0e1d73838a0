import Cluster
import Synchronization

/// The one timer of every Raft replica on the node. Each shard's core asks for its next tick
/// (`RaftDirective.scheduleTick`); the ticker keeps those deadlines and ticks the shards whose
/// deadline passed, sleeping until the earliest one (woken when an earlier one is scheduled).
/// One loop instead of a thousand timers; ticks due within `resolution` of each other go together.
public final class RaftTicker: Sendable {
    private struct State {
        var deadlines: [Duration]
        /// When the loop will look next.
        var nextLook: Duration = .zero
    }

    private static let never = Duration.seconds(Int64.max / 4)
    private let state: Mutex<State>
    private let resolution: Duration
    private let wakeup = Wakeup()

    public init(shardCount: Int, resolution: Duration = .milliseconds(5)) {
        state = Mutex(State(deadlines: Array(repeating: Self.never, count: shardCount)))
        self.resolution = resolution
    }

    /// Replaces `shard`'s next tick.
    func schedule(shard: Int, at deadline: Duration) {
        let earlier = state.withLock { state -> Bool in
            state.deadlines[shard] = deadline
            return deadline < state.nextLook
        }
        if earlier { wakeup.signal() }
    }

    /// Ticks due shards until cancelled.
    public func run(_ tick: @Sendable (Int) async -> Void) async {
        while !Task.isCancelled {
            let now = RaftClock.now
            let (due, next) = state.withLock { state -> ([Int], Duration) in
                var due: [Int] = []
                var next = Self.never
                for (shard, deadline) in state.deadlines.enumerated() {
                    if deadline <= now + resolution {
                        due.append(shard)
                        state.deadlines[shard] = Self.never
                    } else {
                        next = min(next, deadline)
                    }
                }
                state.nextLook = due.isEmpty ? next : now
                return (due, next)
            }
            if !due.isEmpty {
                for shard in due { await tick(shard) }
                continue
            }
            let wait = min(next - now, .seconds(1))
            await wakeup.wait(until: .now + wait)
        }
    }
}
