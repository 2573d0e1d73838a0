import Monitoring

/// The partition scenarios of `infranaut drill --partition`.
public enum PartitionScenario: String, Sendable, CaseIterable {
    /// The first ⌊(N−1)/2⌋ nodes apart from the others.
    case split
    /// One node (the primary of the most shards) apart from the others.
    case isolate
    /// Two sides that cannot talk to each other, and one node that talks to both.
    case bridge
    /// A new random split every 2–3 s (seeded).
    case flap
}

/// One arrangement of the cluster in a partition drill: which nodes cannot talk to which. Pure;
/// the drill turns it into fault rules on every node (``cuts(of:)``).
public struct Partition: Sendable, Equatable, CustomStringConvertible {
    /// Every node of the cluster, by id.
    public let nodes: [String]
    /// Groups that cannot talk to each other; a node in no group talks to everyone.
    public let apart: [[String]]

    /// - Parameters:
    ///   - nodes: every node of the cluster.
    ///   - apart: groups of nodes that cannot talk to each other (disjoint).
    public init(nodes: [String], apart: [[String]]) {
        self.nodes = nodes
        self.apart = apart.filter { !$0.isEmpty }
    }

    /// The nodes whose traffic `node` drops: every node of every other group than its own. Symmetric.
    public func cuts(of node: String) -> [String] {
        guard let mine = apart.firstIndex(where: { $0.contains(node) }) else { return [] }
        return apart.enumerated().filter { $0.offset != mine }.flatMap(\.element)
    }

    /// Whether `node` still sees a strict majority of the cluster (itself included).
    public func seesMajority(_ node: String) -> Bool {
        (nodes.count - cuts(of: node).count) * 2 > nodes.count
    }

    /// Nodes that cannot see a strict majority: they must refuse writes. Empty for a bridge of an
    /// odd number of nodes, where every node sees a majority.
    public var minority: [String] { nodes.filter { !seesMajority($0) } }

    /// Nodes through which the majority side should accept writes: those that see a majority and
    /// are cut from no other such node (the bridge node alone, for a bridge).
    public var majority: [String] {
        let seeing = Set(nodes.filter(seesMajority))
        return nodes.filter { node in seeing.contains(node) && cuts(of: node).allSatisfy { !seeing.contains($0) } }
    }

    /// Nodes that lost contact with some peer: where a client should first see refusals or timeouts.
    public var cutOff: [String] { nodes.filter { !cuts(of: $0).isEmpty } }

    /// For example `{n1,n2} | {n3,n4,n5}`, or `{n1,n2} | {n4,n5}, bridged by n3`.
    public var description: String {
        let sides = apart.map { "{\($0.joined(separator: ","))}" }.joined(separator: " | ")
        let bridges = nodes.filter { node in !apart.contains { $0.contains(node) } }
        return bridges.isEmpty ? sides : "\(sides), bridged by \(bridges.joined(separator: ","))"
    }

    /// The first ⌊(N−1)/2⌋ nodes apart from the others.
    public static func split(_ nodes: [String]) -> Partition {
        let minority = (nodes.count - 1) / 2
        return Partition(nodes: nodes, apart: [Array(nodes.prefix(minority)), Array(nodes.dropFirst(minority))])
    }

    /// `node` apart from every other node.
    public static func isolate(_ node: String, in nodes: [String]) -> Partition {
        Partition(nodes: nodes, apart: [[node], nodes.filter { $0 != node }])
    }

    /// The first ⌊(N−1)/2⌋ nodes and the nodes after the next one cannot talk; that next node talks
    /// to both sides.
    public static func bridge(_ nodes: [String]) -> Partition {
        let side = (nodes.count - 1) / 2
        return Partition(nodes: nodes, apart: [Array(nodes.prefix(side)), Array(nodes.dropFirst(side + 1))])
    }

    /// A random minority of 1 to ⌊(N−1)/2⌋ nodes apart from the others.
    static func randomSplit(_ nodes: [String], using generator: inout SplitMix64) -> Partition {
        let size = Int.random(in: 1...max(1, (nodes.count - 1) / 2), using: &generator)
        let shuffled = nodes.shuffled(using: &generator)
        let minority = Set(shuffled.prefix(size))
        return Partition(
            nodes: nodes, apart: [nodes.filter(minority.contains), nodes.filter { !minority.contains($0) }])
    }
}
