import Cluster
import Logging
import ServiceLifecycle

// The node's small services; the group that runs them, and the order it stops them in, is in
// NodeService.swift.

/// Periodic checkpoints of every shard while the node runs, and every shard's final checkpoint
/// (`stop()`) when it shuts down. First in the node's group, so the last to stop: by then neither
/// listener nor any peer can reach a shard.
struct ShardCheckpoints: Service {
    let shards: [ShardActor]
    let interval: Duration

    func run() async {
        await repeatUntilStopped(every: interval) {
            for shard in shards { await shard.checkpoint() }
        }
        for shard in shards { await shard.stop() }
    }
}

/// Anti-entropy, every `interval`: idle shards get their new followers up to date too; the clients
/// of departed peers are closed (after 120 s unused); replay-window senders whose frames are all
/// too old are forgotten.
struct FollowerSweep: Service {
    let shards: [ShardActor]
    let membership: MembershipService
    let peers: PeerClients
    let authenticator: PeerAuthenticator
    let interval: Duration

    /// Shards swept at once. A pass is mostly network round trips (claims, ops, snapshots), so a
    /// node that just took over hundreds of shards from a dead peer claims and syncs them side by
    /// side rather than one after another; an idle pass costs one actor hop per shard either way.
    static let parallelSweeps = 16

    func run() async {
        await repeatUntilStopped(every: interval) {
            await withTaskGroup(of: Void.self) { group in
                var pending = shards.makeIterator()
                func startNext() {
                    guard !isStopping, let shard = pending.next() else { return }
                    group.addTask { await shard.sweepFollowers() }
                }
                for _ in 0..<Self.parallelSweeps { startNext() }
                for await _ in group { startNext() }
            }
            peers.retain(only: Set(await membership.peerAddresses))
            authenticator.prune()
        }
    }
}

/// Fail-stop: throws at the first storage failure a shard reports, which shuts the node down. A
/// shard that cannot write stops serving, and a replica that answers "busy" to every replication
/// request would keep its primaries from acknowledging anything; so the whole node stops, and its
/// peers declare it dead and move on.
struct StorageFailureWatch: Service {
    let failures: AsyncStream<String>
    let logger: Logger

    func run() async throws {
        for await reason in failures.cancelOnGracefulShutdown() {
            logger.critical("stopping the node after a storage failure", metadata: ["reason": "\(reason)"])
            throw NodeFailure(reason: reason)
        }
    }
}

/// Whether the running service was asked to stop (graceful shutdown) or its task was cancelled.
var isStopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

/// Runs `body` every `interval` (measured from the end of the previous round) until the service is
/// asked to stop; a round in progress finishes first.
func repeatUntilStopped(every interval: Duration, _ body: () async -> Void) async {
    let stop = Wakeup()
    await withTaskCancellationOrGracefulShutdownHandler {
        while !isStopping {
            await stop.wait(until: .now + interval)
            guard !isStopping else { break }
            await body()
        }
    } onCancelOrGracefulShutdown: {
        stop.signal()
    }
}
