/// One SWIM protocol message between two nodes.
///
/// Every message names its sender (id and listen address, so a reply can be sent even to a node
/// not yet in the receiver's view) and piggybacks membership updates. The shell maps it onto one
/// protobuf frame: sender, one `payload` variant, and the repeated `gossip` updates.
public struct SWIMMessage: Hashable, Sendable, CustomStringConvertible {
    /// The node that sent the message.
    public var sender: Peer
    /// What the message asks or answers.
    public var payload: Payload
    /// Membership updates piggybacked on the message (Lifeguard/SWIM infection-style dissemination).
    public var gossip: [MemberUpdate]

    /// Creates a message.
    public init(sender: Peer, payload: Payload, gossip: [MemberUpdate] = []) {
        self.sender = sender
        self.payload = payload
        self.gossip = gossip
    }

    /// The protocol operations.
    public enum Payload: Hashable, Sendable {
        /// Direct probe; answered with `ack(sequence:)` carrying the same sequence number.
        case ping(sequence: UInt64)
        /// Indirect probe request: "ping `target` for me". The receiver pings the target and relays
        /// `ack(sequence:)` if it answers, or sends `nack(sequence:)` if it does not answer within
        /// `SWIMSettings.nackFraction` of the probe timeout (Lifeguard).
        case pingReq(sequence: UInt64, target: Peer)
        /// Answer to `ping`, or an indirect answer relayed by a `pingReq` receiver.
        case ack(sequence: UInt64)
        /// A `pingReq` receiver reporting it could not reach the target in time. Proves the
        /// requester's links work (local health) and counts as an independent suspicion.
        case nack(sequence: UInt64)
        /// Full-state anti-entropy exchange: every member record the sender holds, tombstones included.
        /// A request (`isReply == false`) is answered with the receiver's own full state.
        case pushPull(members: [MemberUpdate], isReply: Bool)
        /// A new node asking a seed to let it in. Its own `alive` record is in `gossip`; the seed
        /// answers with `pushPull(members:isReply: true)`.
        case join
        /// A node announcing it leaves gracefully. Its `left` record is in `gossip`.
        case leave
        /// Nothing but the piggybacked updates (periodic gossip fan-out).
        case gossip
    }

    public var description: String {
        let kind: String
        switch payload {
        case .ping(let seq): kind = "ping #\(seq)"
        case .pingReq(let seq, let target): kind = "pingReq #\(seq) -> \(target.id)"
        case .ack(let seq): kind = "ack #\(seq)"
        case .nack(let seq): kind = "nack #\(seq)"
        case .pushPull(let members, let isReply): kind = "pushPull(\(members.count)\(isReply ? ", reply" : ""))"
        case .join: kind = "join"
        case .leave: kind = "leave"
        case .gossip: kind = "gossip"
        }
        return "\(kind) from \(sender.id) +\(gossip.count) updates"
    }
}

/// What the shell must do after handing an event to `SWIMInstance`.
public enum SWIMDirective: Hashable, Sendable {
    /// Send `message` to the cluster listener at `address`. Best effort: loss is tolerated.
    case send(SWIMMessage, to: String)
    /// (Re)arm the shell's single protocol timer to call `SWIMInstance.onTick(now:)` at `at`
    /// (same clock origin as the `now` values given to the instance). Replaces any earlier
    /// schedule. Every handler's result ends with exactly one of these.
    case scheduleTick(at: Duration)
    /// A member's record changed (new member, status or incarnation change). The placement
    /// should be recomputed when `member.status.isLive` differs from `previousStatus?.isLive`.
    case memberChanged(MemberChange)
}

/// A change of one member's record, as reported by `SWIMDirective.memberChanged`.
public struct MemberChange: Hashable, Sendable, CustomStringConvertible {
    /// The member's new record.
    public var member: Member
    /// The status before the change; `nil` for a member seen for the first time.
    public var previousStatus: MemberStatus?

    /// Creates a change.
    public init(member: Member, previousStatus: MemberStatus?) {
        self.member = member
        self.previousStatus = previousStatus
    }

    public var description: String {
        "\(member.id): \(previousStatus.map { "\($0)" } ?? "new") -> \(member.status)@\(member.incarnation)"
    }
}
