/// The stable identity of a node in the cluster (for example `node-1`).
///
/// Node ids are chosen by the operator (`--node-id`) and survive restarts; a restarted node
/// reuses its id and proves it is the newer instance with a higher incarnation.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The id as given by the operator.
    public let rawValue: String

    /// Wraps an operator-chosen id.
    public init(_ rawValue: String) {
        self.rawValue = rawValue
    }

    public init(stringLiteral value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// A node's identity plus the address its cluster (peer) listener is bound to.
///
/// Every `SWIMMessage` carries its sender as a `Peer`, because the transport's remote address
/// is an ephemeral port, not the listener a reply must go to.
public struct Peer: Hashable, Sendable, CustomStringConvertible {
    /// The node's id.
    public var id: NodeID
    /// The node's cluster listen address, as the transport understands it (e.g. `tcp://10.0.0.5:7946`).
    public var address: String

    /// Creates a peer.
    public init(id: NodeID, address: String) {
        self.id = id
        self.address = address
    }

    public var description: String { "\(id)@\(address)" }
}

/// What a node does in the cluster. A node may have both roles.
public enum NodeRole: String, Hashable, Sendable, CaseIterable, Comparable {
    /// Holds shard replicas and runs the monitoring computations.
    case worker
    /// Receives alert events and sends notifications.
    case coordinator

    public static func < (lhs: NodeRole, rhs: NodeRole) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}

/// The status of a member as seen by one node.
///
/// For a given incarnation the statuses are ordered `alive < suspect < dead < left`: a later
/// status overrides an earlier one at the same incarnation, and any status at a higher
/// incarnation overrides every status at a lower one (see `MemberUpdate.supersedes(_:)`).
public enum MemberStatus: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Answering probes.
    case alive = 0
    /// Missed a direct and an indirect probe; declared dead when its suspicion timeout expires
    /// unless it refutes with a higher incarnation.
    case suspect = 1
    /// Declared dead (crashed or unreachable). Kept as a tombstone for `SWIMSettings.tombstoneTTL`.
    case dead = 2
    /// Left gracefully. Kept as a tombstone for `SWIMSettings.tombstoneTTL`.
    case left = 3

    /// `alive` and `suspect` members still count as members of the cluster (they own shards);
    /// `dead` and `left` ones do not.
    public var isLive: Bool { self == .alive || self == .suspect }

    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        case .left: "left"
        }
    }
}

/// One member of the cluster as seen by one node.
public struct Member: Hashable, Sendable, CustomStringConvertible {
    /// The node's id.
    public var id: NodeID
    /// The node's cluster listen address.
    public var address: String
    /// The status this node currently believes.
    public var status: MemberStatus
    /// Raised only by the member itself, to refute a suspicion or to announce a restart.
    public var incarnation: UInt64
    /// The roles the member announced when it joined.
    public var roles: Set<NodeRole>
    /// Where the member serves clients (its client endpoint); fixed for the member's lifetime and
    /// carried in gossip so any node can forward a request to it. Empty when unknown.
    public var clientAddress: String
    /// Where the member serves its peers (sealed requests: replication, snapshots, hand-off,
    /// event delivery, forwarded requests); fixed for the member's lifetime. Empty when unknown.
    public var peerAddress: String

    /// Creates a member.
    public init(
        id: NodeID,
        address: String,
        status: MemberStatus = .alive,
        incarnation: UInt64 = 0,
        roles: Set<NodeRole> = [.worker],
        clientAddress: String = "",
        peerAddress: String = ""
    ) {
        self.clientAddress = clientAddress
        self.peerAddress = peerAddress
        self.id = id
        self.address = address
        self.status = status
        self.incarnation = incarnation
        self.roles = roles
    }

    /// The member's id and address.
    public var peer: Peer { Peer(id: id, address: address) }

    public var description: String {
        "\(id)@\(address) \(status) inc=\(incarnation) roles=\(roles.sorted().map(\.rawValue).joined(separator: ","))"
    }
}
