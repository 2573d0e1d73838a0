/// A statement about one member, as disseminated by gossip and push-pull.
///
/// Updates form a total order per member: `(incarnation, status)` compared lexicographically,
/// with `alive < suspect < dead < left` (see `supersedes(_:)`). Every node keeps, for every
/// member, the greatest update it has seen, so any two nodes that have seen the same updates hold
/// the same view whatever the order of arrival.
public struct MemberUpdate: Hashable, Sendable, CustomStringConvertible {
    /// The member the update is about.
    public var id: NodeID
    /// The member's cluster listen address.
    public var address: String
    /// The claimed status.
    public var status: MemberStatus
    /// The member's incarnation the claim refers to.
    public var incarnation: UInt64
    /// The member's roles.
    public var roles: Set<NodeRole>
    /// For `suspect` updates: the node that suspects. Distinct sources for the same suspicion are
    /// the independent confirmations that shorten the Lifeguard suspicion timeout. `nil` otherwise.
    public var source: NodeID?
    /// The member's client endpoint (see ``Member/clientAddress``).
    public var clientAddress: String = ""
    /// The member's peer endpoint (see ``Member/peerAddress``).
    public var peerAddress: String = ""

    /// Creates an update.
    public init(
        id: NodeID,
        address: String,
        status: MemberStatus,
        incarnation: UInt64,
        roles: Set<NodeRole>,
        source: NodeID? = nil
    ) {
        self.id = id
        self.address = address
        self.status = status
        self.incarnation = incarnation
        self.roles = roles
        self.source = source
    }

    /// An update stating the given member's current record.
    public init(_ member: Member, source: NodeID? = nil) {
        self.init(
            id: member.id,
            address: member.address,
            status: member.status,
            incarnation: member.incarnation,
            roles: member.roles,
            source: source
        )
        clientAddress = member.clientAddress
        peerAddress = member.peerAddress
    }

    /// The member this update describes.
    public var member: Member {
        Member(
            id: id, address: address, status: status, incarnation: incarnation, roles: roles,
            clientAddress: clientAddress, peerAddress: peerAddress)
    }

    /// Whether this update carries newer information than a record with `incarnation` and `status`.
    public func supersedes(incarnation other: UInt64, status otherStatus: MemberStatus) -> Bool {
        if incarnation != other { return incarnation > other }
        return status.rawValue > otherStatus.rawValue
    }

    /// Whether this update carries newer information than `member`.
    public func supersedes(_ member: Member) -> Bool {
        supersedes(incarnation: member.incarnation, status: member.status)
    }

    public var description: String {
        "\(id) \(status)@\(incarnation)" + (source.map { " by \($0)" } ?? "")
    }
}
