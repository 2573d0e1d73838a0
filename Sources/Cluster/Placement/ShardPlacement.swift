/// The placement function: which worker nodes hold each shard, and which of them is primary.
///
/// A pure function of the set of live worker ids and the settings, so every node that has the
/// same membership view computes the same placement. Node ids are sorted first and every choice
/// follows a total order, so ties cannot make nodes disagree.
///
/// 1. **Replica sets by rendezvous hashing.** Every (shard, worker) pair gets the score
///    `StableHash.rendezvousScore(fnv1a64(worker), shard)`; the `replicationFactor` highest
///    scores hold the shard. A join or leave changes only the replicas the joining or leaving
///    node gains or loses: nothing else moves, so about `1/N` of the replicas move. With
///    `PlacementSettings.replicaLoadFactor` set, nodes above the cap then hand their
///    lowest-scoring replicas to the next-best node with room (more even data, more movement).
/// 2. **Primaries balanced within the replica sets.** Each shard starts with its top-scoring
///    replica as primary (plain HRW leaves the busiest node ~1.4× the mean with 64 shards). A
///    node above `PlacementSettings.primaryCap` then hands its lowest-scoring primaries to
///    another replica of the same shard that has room, and shortest augmenting paths over
///    "primary of s -> other replica of s" edges fix what is left (the cap rises by one only
///    when the replica sets make it unreachable). Promoting a follower moves no data.
public enum ShardPlacement {
    /// The replicas of every shard, indexed by shard number, primary first, then followers in
    /// descending rendezvous score. Empty lists when there are no workers; shorter than the
    /// replication factor when there are fewer workers.
    /// - Parameters:
    ///   - workers: the live (alive or suspect) members with the `worker` role. Order and duplicates
    ///     do not matter.
    ///   - settings: shard count and replication factor.
    public static func replicaSets<Workers: Sequence>(
        workers: Workers,
        settings: PlacementSettings
    ) -> [[NodeID]] where Workers.Element == NodeID {
        let nodes = Array(Set(workers)).sorted()
        let shardCount = settings.shardCount
        guard !nodes.isEmpty else { return Array(repeating: [], count: shardCount) }
        let hashes = nodes.map { StableHash.fnv1a64($0.rawValue) }
        let width = min(settings.replicationFactor, nodes.count)
        var pairs: [Pair] = []
        pairs.reserveCapacity(shardCount * nodes.count)
        for shard in 0..<shardCount {
            for node in nodes.indices {
                let score = StableHash.rendezvousScore(nodeHash: hashes[node], shard: shard)
                pairs.append(Pair(score: score, shard: shard, node: node))
            }
        }
        pairs.sort()
        let cap = settings.replicaCap(workerCount: nodes.count)
        let replicas = boundedAssignment(
            pairs, shardCount: shardCount, nodeCount: nodes.count, perShard: width, cap: cap)
        let primaries = balancedPrimaries(
            replicas: replicas,
            pairs: pairs,
            nodeCount: nodes.count,
            cap: settings.primaryCap(workerCount: nodes.count)
        )
        return replicas.enumerated().map { shard, holders in
            let primary = primaries[shard]
            return [nodes[primary]] + holders.filter { $0 != primary }.map { nodes[$0] }
        }
    }

    /// A (shard, node) rendezvous score; sorts highest score first, ties by shard then node.
    struct Pair: Comparable {
        var score: UInt64
        var shard: Int
        var node: Int

        static func < (lhs: Pair, rhs: Pair) -> Bool {
            if lhs.score != rhs.score { return lhs.score > rhs.score }
            return lhs.shard != rhs.shard ? lhs.shard < rhs.shard : lhs.node < rhs.node
        }
    }

    /// Rendezvous top-`perShard` per shard, then (if `cap` binds) overflow repair: walking pairs from the lowest
    /// score up, a node above `cap` drops that shard, which goes to its best-scoring node that
    /// has room. Only the excess of overloaded nodes moves, so the repair is stable from one
    /// view to the next. Replicas of each shard come out in descending score order.
    static func boundedAssignment(_ pairs: [Pair], shardCount: Int, nodeCount: Int, perShard: Int, cap: Int) -> [[Int]]
    {
        var byShard = [[Pair]](repeating: [], count: shardCount)
        for pair in pairs { byShard[pair.shard].append(pair) }  // each in descending score order
        var holds = [Set<Int>](repeating: [], count: shardCount)
        var load = [Int](repeating: 0, count: nodeCount)
        for shard in 0..<shardCount {
            for pair in byShard[shard].prefix(perShard) {
                holds[shard].insert(pair.node)
                load[pair.node] += 1
            }
        }
        for pair in pairs.reversed() where load[pair.node] > cap && holds[pair.shard].contains(pair.node) {
            guard
                let target = byShard[pair.shard].first(where: {
                    !holds[pair.shard].contains($0.node) && load[$0.node] < cap
                })
            else {
                continue
            }
            holds[pair.shard].remove(pair.node)
            load[pair.node] -= 1
            holds[pair.shard].insert(target.node)
            load[target.node] += 1
        }
        return byShard.enumerated().map { shard, ranked in
            ranked.lazy.map(\.node).filter { holds[shard].contains($0) }
        }
    }

    /// Chooses one primary per shard among its replicas so that no node has more than
    /// `ceil(S/N)` primaries when the replica sets allow it.
    static func balancedPrimaries(replicas: [[Int]], pairs: [Pair], nodeCount: Int, cap: Int) -> [Int] {
        var cap = cap
        var primary = replicas.map { $0[0] }
        var load = [Int](repeating: 0, count: nodeCount)
        for node in primary { load[node] += 1 }
        // Overflow repair first: an overloaded node hands its lowest-scoring primaries to
        // another replica of the same shard that has room.
        for pair in pairs.reversed() where load[pair.node] > cap && primary[pair.shard] == pair.node {
            guard let other = replicas[pair.shard].first(where: { $0 != pair.node && load[$0] < cap }) else { continue }
            primary[pair.shard] = other
            load[pair.node] -= 1
            load[other] += 1
        }
        while let overloaded = mostLoaded(load, above: cap) {
            if !shedOnePrimary(from: overloaded, cap: cap, replicas: replicas, primary: &primary, load: &load) {
                cap += 1
            }
        }
        return primary
    }

    private static func mostLoaded(_ load: [Int], above cap: Int) -> Int? {
        var found: Int?
        for node in load.indices where load[node] > cap {
            if let current = found, load[current] >= load[node] { continue }
            found = node
        }
        return found
    }

    /// Breadth-first search from `source` over "node x is primary of shard s, node y is another
    /// replica of s" edges to the nearest node below `cap`, then moves each primary along the path.
    private static func shedOnePrimary(
        from source: Int,
        cap: Int,
        replicas: [[Int]],
        primary: inout [Int],
        load: inout [Int]
    ) -> Bool {
        var shardsOf = [[Int]](repeating: [], count: load.count)
        for (shard, node) in primary.enumerated() { shardsOf[node].append(shard) }
        var via = [(node: Int, shard: Int)?](repeating: nil, count: load.count)
        var visited = [Bool](repeating: false, count: load.count)
        visited[source] = true
        var queue = [source]
        var head = 0
        while head < queue.count {
            let node = queue[head]
            head += 1
            for shard in shardsOf[node] {
                for other in replicas[shard] where !visited[other] {
                    visited[other] = true
                    via[other] = (node, shard)
                    if load[other] < cap {
                        var current = other
                        while let step = via[current] {
                            primary[step.shard] = current
                            current = step.node
                        }
                        load[source] -= 1
                        load[other] += 1
                        return true
                    }
                    queue.append(other)
                }
            }
        }
        return false
    }
}
