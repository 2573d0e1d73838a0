public import Cluster
public import Wire

/// Conversions between the SWIM state machine's messages and their protobuf frames. Decoding
/// rejects frames with missing or unknown parts with a message naming what was wrong.
extension SWIMMessage {
    public var wire: Infranaut_V1_SwimMessage {
        .with {
            $0.sender = sender.wire
            $0.gossip = gossip.map(\.wire)
            switch payload {
            case .ping(let sequence): $0.ping = sequence
            case .pingReq(let sequence, let target):
                $0.pingReq = .with {
                    $0.sequence = sequence
                    $0.target = target.wire
                }
            case .ack(let sequence): $0.ack = sequence
            case .nack(let sequence): $0.nack = sequence
            case .pushPull(let members, let isReply):
                $0.pushPull = .with {
                    $0.members = members.map(\.wire)
                    $0.isReply = isReply
                }
            case .join: $0.join = true
            case .leave: $0.leave = true
            case .gossip: $0.gossipOnly = true
            }
        }
    }

    public init(wire: Infranaut_V1_SwimMessage) throws(WireError) {
        guard wire.hasSender else { throw .invalid("swim message without sender") }
        let sender = try Peer(wire: wire.sender)
        let gossip = try wire.gossip.map { (record) throws(WireError) -> MemberUpdate in try MemberUpdate(wire: record)
        }
        let payload: Payload
        switch wire.payload {
        case .ping(let sequence): payload = .ping(sequence: sequence)
        case .pingReq(let request):
            guard request.hasTarget else { throw .invalid("swim ping_req without target") }
            payload = .pingReq(sequence: request.sequence, target: try Peer(wire: request.target))
        case .ack(let sequence): payload = .ack(sequence: sequence)
        case .nack(let sequence): payload = .nack(sequence: sequence)
        case .pushPull(let exchange):
            payload = .pushPull(
                members: try exchange.members.map { (record) throws(WireError) -> MemberUpdate in
                    try MemberUpdate(wire: record)
                },
                isReply: exchange.isReply)
        case .join: payload = .join
        case .leave: payload = .leave
        case .gossipOnly: payload = .gossip
        case .none: throw .invalid("swim message from \(sender.id) has no payload")
        }
        self.init(sender: sender, payload: payload, gossip: gossip)
    }
}

extension Peer {
    var wire: Infranaut_V1_SwimPeer {
        .with {
            $0.id = id.rawValue
            $0.address = address
        }
    }

    init(wire: Infranaut_V1_SwimPeer) throws(WireError) {
        guard !wire.id.isEmpty, !wire.address.isEmpty else { throw .invalid("swim peer without id or address") }
        self.init(id: NodeID(wire.id), address: wire.address)
    }
}

extension MemberUpdate {
    var wire: Infranaut_V1_MemberRecord {
        .with {
            $0.id = id.rawValue
            $0.address = address
            $0.state = status.wire
            $0.incarnation = incarnation
            $0.roles = roles.sorted().map(\.rawValue)
            $0.source = source?.rawValue ?? ""
            $0.clientAddress = clientAddress
            $0.peerAddress = peerAddress
        }
    }

    init(wire: Infranaut_V1_MemberRecord) throws(WireError) {
        guard !wire.id.isEmpty else { throw .invalid("member record without id") }
        guard let status = MemberStatus(rawValue: UInt8(clamping: wire.state.rawValue)) else {
            throw .invalid("member record \(wire.id) has unknown state \(wire.state.rawValue)")
        }
        var roles = Set<NodeRole>()
        for role in wire.roles {
            guard let parsed = NodeRole(rawValue: role) else {
                throw .invalid("member record \(wire.id) has unknown role \(role)")
            }
            roles.insert(parsed)
        }
        self.init(
            id: NodeID(wire.id), address: wire.address, status: status, incarnation: wire.incarnation, roles: roles,
            source: wire.source.isEmpty ? nil : NodeID(wire.source))
        clientAddress = wire.clientAddress
        peerAddress = wire.peerAddress
    }
}

extension MemberStatus {
    /// The status as it travels in `MemberRecord.state` and `MemberInfo.state`.
    var wire: Infranaut_V1_MemberState {
        switch self {
        case .alive: .alive
        case .suspect: .suspect
        case .dead: .dead
        case .left: .left
        }
    }
}
