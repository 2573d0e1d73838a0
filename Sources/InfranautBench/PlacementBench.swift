import ArgumentParser
import Cluster
import Foundation

/// How evenly the placement spreads replicas and primaries, how much a join moves, and what a
/// placement costs to compute, for a range of cluster sizes (pure computation, no nodes).
struct PlacementBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "placement", abstract: "Placement balance (max/mean per node), join movement and compute time.")

    @Option(help: "Shard counts (comma-separated).")
    var shards = "64,1024"

    @Option(help: "Cluster sizes (comma-separated).")
    var nodes = "3,10,50,100"

    @Option(name: .customLong("replication-factor"), help: "Replicas per shard.")
    var replicationFactor = 3

    @Option(
        name: .customLong("replica-load-factor"),
        help: "Bounded-load factor for replicas; 0: unbounded (default: the placement's own default).")
    var replicaLoadFactor: Double?

    func run() async throws {
        let shardCounts = shards.split(separator: ",").compactMap { Int($0) }
        let sizes = nodes.split(separator: ",").compactMap { Int($0) }
        print(
            "| shards | nodes | replicas per node (mean) | replicas max/mean | primaries max/mean | replicas moved by a join (share) | compute (median of 5) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for shardCount in shardCounts {
            for size in sizes {
                var settings = PlacementSettings(shardCount: shardCount, replicationFactor: replicationFactor)
                if let replicaLoadFactor {
                    settings.replicaLoadFactor = replicaLoadFactor == 0 ? nil : replicaLoadFactor
                }
                let workers = (0..<size).map { NodeID("node-\($0)") }
                var times: [Duration] = []
                var table = PlacementTable(settings: settings)
                for _ in 0..<5 {
                    var fresh = PlacementTable(settings: settings)
                    let started = ContinuousClock.now
                    fresh.update(workers: workers)
                    times.append(ContinuousClock.now - started)
                    table = fresh
                }
                var joined = table
                let diff = joined.update(workers: workers + [NodeID("node-\(size)")])
                let moved = Double(diff.movedReplicas) / Double(shardCount * min(replicationFactor, size))
                let median = times.sorted()[2]
                print(
                    String(
                        format: "| %d | %d | %.1f | %.2f | %.2f | %.3f | %.1f ms |",
                        shardCount, size, Double(shardCount * min(replicationFactor, size)) / Double(size),
                        table.replicaSkew, table.primarySkew, moved,
                        Double(median.components.attoseconds) / 1e15 + Double(median.components.seconds) * 1000))
            }
        }
    }
}
