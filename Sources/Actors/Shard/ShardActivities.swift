/// The exclusive activities of a shard actor. Each runs at most once at a time, across the
/// suspension points inside it (actor reentrancy lets other calls run meanwhile), and some refuse
/// to start while another runs: a checkpoint does not start while a replica write installs
/// another history, a snapshot install does not start while a checkpoint runs, a sweep does not
/// start while writes replicate or a term is being claimed.
struct ShardActivities {
    enum Activity: Hashable {
        /// Writing changed models and dropping the ops a checkpoint covers.
        case checkpoint
        /// Making a term promise durable (one at a time, so a promise never goes backwards).
        case promise
        /// The shard's one exchange with its followers: the write pump, the anti-entropy sweep, a
        /// hand-off pass or seeding a successor.
        case exchange
        /// Claiming a term from the followers before the first write as primary.
        case claim
        /// Making ops or a snapshot from another replica durable.
        case replicaWrite
    }

    private var running: Set<Activity> = []
    private var idleWaiters: [Activity: [CheckedContinuation<Void, Never>]] = [:]
    /// Follow-up work started by the shard itself (a pump, a checkpoint), by id.
    var background: [Int: Task<Void, Never>] = [:]
    private var lastBackgroundID = 0

    mutating func nextBackgroundID() -> Int {
        lastBackgroundID += 1
        return lastBackgroundID
    }

    func isRunning(_ activity: Activity) -> Bool { running.contains(activity) }

    /// Marks `activity` running; false (and nothing changed) when it already runs.
    mutating func begin(_ activity: Activity) -> Bool {
        running.insert(activity).inserted
    }

    /// Marks `activity` finished and returns whoever waited for it to finish, to resume.
    mutating func end(_ activity: Activity) -> [CheckedContinuation<Void, Never>] {
        running.remove(activity)
        return idleWaiters.removeValue(forKey: activity) ?? []
    }

    /// Registers a waiter that `end(activity)` hands back (the caller checked that it runs).
    mutating func waitForEnd(of activity: Activity, _ continuation: CheckedContinuation<Void, Never>) {
        idleWaiters[activity, default: []].append(continuation)
    }
}

extension ShardActor {
    /// Marks `activity` finished and resumes whoever waited for its end.
    func finish(_ activity: ShardActivities.Activity) {
        for waiter in activities.end(activity) { waiter.resume() }
    }

    /// Returns once `activity` is not running.
    func awaitEnd(of activity: ShardActivities.Activity) async {
        while activities.isRunning(activity) {
            await withCheckedContinuation { activities.waitForEnd(of: activity, $0) }
        }
    }

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
