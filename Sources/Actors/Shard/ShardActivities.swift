/// What a shard actor runs beside its requests: its own background tasks (the directive pump, a
/// checkpoint it started after enough entries), which ``ShardActor/stop()`` awaits, and whether a
/// checkpoint is being written (at most one at a time, across the suspension at its write).
struct ShardActivities {
    /// Whether a checkpoint runs, and who waits for it to end (``ShardActor/awaitCheckpointEnd()``).
    var checkpointing = false
    var checkpointWaiters: [CheckedContinuation<Void, Never>] = []
    /// Whether a window tick is being proposed.
    var ticking = false
    /// Whether expired window results are being deleted.
    var retaining = false
    /// Follow-up work started by the shard itself, by id.
    var background: [Int: Task<Void, Never>] = [:]
    private var lastBackgroundID = 0

    mutating func nextBackgroundID() -> Int {
        lastBackgroundID += 1
        return lastBackgroundID
    }
}

extension ShardActor {
    /// Runs `work` on a task the shard owns: ``stop()`` waits for every one of them.
    func inBackground(_ work: @escaping @Sendable () async -> Void) {
        let id = activities.nextBackgroundID()
        activities.background[id] = Task {
            await work()
            self.backgroundEnded(id)
        }
    }

    private func backgroundEnded(_ id: Int) {
        activities.background[id] = nil
    }

    /// Returns once no checkpoint runs. A received snapshot's write waits for it: the writer queues
    /// a batch only after the actor's call has left it, so a checkpoint's write issued first could
    /// otherwise land after the install and put older model entries back over it.
    func awaitCheckpointEnd() async {
        while activities.checkpointing {
            await withCheckedContinuation { activities.checkpointWaiters.append($0) }
        }
    }

    func checkpointEnded() {
        activities.checkpointing = false
        let waiters = activities.checkpointWaiters
        activities.checkpointWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    /// Waits for every task started with ``inBackground(_:)``, including ones they start.
    func awaitBackground() async {
        while let task = activities.background.values.first {
            await task.value
        }
    }
}
