import Cluster
import Logging
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

// The node's small services; the group that runs them, and the order it stops them in, is in
// NodeService.swift.

/// The shards' Raft groups: the timer that ticks them, the transport their messages leave by, and
/// periodic checkpoints, while the node runs; at shutdown every shard stops (its queued writes finish, waiting proposals
/// are told to retry). First in the node's group, so the last to stop: groups keep replicating
/// while the listeners drain.
struct ShardGroups: Service {
    let shards: [ShardActor]
    let ticker: RaftTicker
    let transport: RaftTransport
    /// How often every shard with new entries writes a checkpoint (besides every N entries).
    let checkpointInterval: Duration

    func run() async {
        let shards = self.shards
        await withDiscardingTaskGroup { group in
            group.addTask { await ticker.run { shard in await shards[shard].tick() } }
            group.addTask { await transport.run() }
            // Windows of models whose traffic stopped close by processing time, through the log;
            // expired window results go; idle models leave memory.
            group.addTask {
                var parkedSinceTrim = 0
                var lastTrim = ContinuousClock.now
                await repeatUntilStopped(every: .seconds(1)) {
                    for shard in shards {
                        await shard.closeIdleWindows()
                        await shard.enforceRetention()
                        parkedSinceTrim += await shard.parkIdleModels()
                    }
                    // At most every 10 s: with models coming and going, a trim every second
                    // would give back pages the next load faults in again.
                    if parkedSinceTrim > 0, ContinuousClock.now - lastTrim >= .seconds(10) {
                        releaseFreedMemory()
                        parkedSinceTrim = 0
                        lastTrim = .now
                    }
                }
            }
            await repeatUntilStopped(every: checkpointInterval) {
                for shard in shards { await shard.periodicCheckpoint() }
            }
            for shard in shards { await shard.stop() }
            group.cancelAll()
        }
    }
}

/// Brings every group this node leads toward the replicas the placement wants, one voter at a time
/// (`GroupPlan`), every `interval` and whenever the membership view changes. Also closes the
/// clients of departed peers (after 120 s unused) and forgets replay-window senders whose frames
/// are all too old.
struct GroupReconciler: Service {
    let shards: [ShardActor]
    let membership: MembershipService
    let peers: PeerClients
    let authenticator: PeerAuthenticator
    let interval: Duration

    func run() async {
        var rounds = 0
        await repeatUntilStopped(every: interval) {
            let view = await membership.view
            var liveness: [NodeID: GroupPlan.Liveness] = [view.myself.id: .alive]
            for member in view.members where member.id != view.myself.id {
                switch member.status {
                case .alive: liveness[member.id] = .alive
                case .suspect: liveness[member.id] = .suspect
                case .dead, .left: liveness[member.id] = .gone
                }
            }
            for shard in shards {
                let desired = view.placement.assignment(for: ShardID(shard.shard)).replicas
                await shard.reconcile(desired: desired, liveness: liveness)
            }
            rounds += 1
            if rounds % 20 == 0 {
                peers.retain(only: Set(await membership.peerAddresses))
                authenticator.prune()
            }
        }
    }
}

/// Fail-stop: throws at the first storage failure a shard reports, which shuts the node down. A
/// replica that cannot write can neither vote nor acknowledge appends, so it would only hold its
/// groups' quorums hostage; the whole node stops, and its groups carry on with the others.
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

/// Returns once the service is asked to stop.
func waitUntilStopped() async {
    let stop = Wakeup()
    await withTaskCancellationOrGracefulShutdownHandler {
        while !isStopping { await stop.wait() }
    } onCancelOrGracefulShutdown: {
        stop.signal()
    }
}

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

/// Hands the pages freed by parked models back to the system. glibc's malloc keeps freed memory
/// inside its heaps, so a node that parked hundreds of models would go on holding their memory as
/// resident (measured: no change in RSS without this; docs/benchmarks.md, "parked models").
/// `malloc_trim` walks the free lists once; it runs only after models were parked, at most every
/// 10 s. It is looked up at run time (Swift's Glibc module does not export `malloc.h`); without
/// it, nothing happens.
func releaseFreedMemory() {
    #if canImport(Glibc)
        _ = mallocTrim?(0)
    #endif
}

#if canImport(Glibc)
    private let mallocTrim: (@convention(c) (Int) -> Int32)? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim"
    )
    .map { unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self) }
#endif
