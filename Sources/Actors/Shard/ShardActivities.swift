/// What a shard actor runs beside its requests: its own background tasks (the directive pump, a
/// checkpoint it started after enough entries), which ``ShardActor/stop()`` awaits, and whether a
/// checkpoint is being written (at most one at a time, across the suspension at its write).
struct ShardActivities {
    /// Whether a checkpoint runs.
    var checkpointing = false
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

    /// Waits for every task started with ``inBackground(_:)``, including ones they start.
    func awaitBackground() async {
        while let task = activities.background.values.first {
            await task.value
        }
    }
}
