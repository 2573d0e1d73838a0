import Logging
import ServiceLifecycle
import Wire

/// Hands the alert changes of the shards this node leads to the event relay, and tells each
/// shard when every coordinator has them (docs/alerting.md, "Delivery to the coordinators").
///
/// Invariant: a change leaves the model's replicated outbox only after the relay here reported it
/// delivered to every coordinator. Until then every leader, the next one after a failover too,
/// publishes it again under the same event id, which coordinators keep once.
struct AlertDispatcher: Service {
    let shards: [ShardActor]
    let relay: EventRelay
    let interval: Duration
    let logger: Logger

    /// Changes read from each shard per round.
    static let batch = 512

    func run() async {
        var published: Set<String> = []
        await repeatUntilStopped(every: interval) {
            var seen: Set<String> = []
            for shard in shards {
                let changes = await shard.undeliveredAlertChanges(limit: Self.batch)
                guard !changes.isEmpty else { continue }
                // Per model, the newest number up to which every change is delivered.
                var through: [String: UInt64] = [:]
                var blocked: Set<String> = []
                for (model, number, info) in changes {
                    let id = ModelMonitor.eventID(info)
                    seen.insert(id)
                    if !published.contains(id) {
                        // The hints go with the change people hear of, read once when it is
                        // published (a retry after a failover reads them again).
                        var told = info
                        if info.state == .firing, let hints = await shard.hints(of: info) { told.hints = hints }
                        guard let event = try? ModelMonitor.event(told) else { continue }
                        let answer = await relay.publish(event)
                        if answer.status.code == .ok { published.insert(id) }
                    }
                    guard !blocked.contains(model) else { continue }
                    if published.contains(id), await !relay.isPending(id) {
                        through[model] = number
                    } else {
                        blocked.insert(model)
                    }
                }
                for (model, number) in through.sorted(by: { $0.key < $1.key }) {
                    if !(await shard.proposeAlertsDelivered(model: model, through: number)) {
                        logger.debug("alert changes delivered but not yet recorded", metadata: ["model": "\(model)"])
                    }
                }
            }
            // Ids no shard offers any more (recorded as delivered, or led elsewhere now) go.
            published.formIntersection(seen)
        }
    }
}
