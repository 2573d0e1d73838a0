import Cluster
import Wire

/// The answers to `members` and `ring`: this node's view of the cluster and its placement.
extension RequestHandler {
    func membersResponse(_ view: MembershipView) -> Infranaut_V1_MembersResponse {
        let refused = peers.authenticator.refusalCounts
        let onClient = clientRefusals.load(ordering: .relaxed)
        return .with {
            $0.status = .ok
            $0.selfID = view.myself.id.rawValue
            $0.shardCount = UInt32(view.placement.settings.shardCount)
            $0.replicationFactor = UInt32(view.placement.settings.replicationFactor)
            $0.seesMajority = view.seesMajority
            $0.refused = .with {
                $0.peerBodyOnClient = onClient
                $0.notSealed = refused.notSealed
                $0.badMac = refused.badMAC
                $0.wrongChannel = refused.wrongChannel
                $0.stale = refused.stale
                $0.replayed = refused.replayed
                $0.expired = expiredRequests.load(ordering: .relaxed)
            }
            $0.replacedPeerConnections = peers.replacedConnections
            $0.members = view.members.sorted { $0.id < $1.id }.map { member in
                .with {
                    $0.id = member.id.rawValue
                    $0.address = member.address
                    $0.status = "\(member.status)"
                    $0.state = member.status.wire
                    $0.incarnation = member.incarnation
                    $0.roles = member.roles.sorted().map(\.rawValue)
                    $0.primaries = view.placement.primaries(of: member.id).map { UInt32($0.rawValue) }
                    $0.followers = view.placement.followers(of: member.id).map { UInt32($0.rawValue) }
                    let heard = member.id == view.myself.id ? .zero : view.lastHeard[member.id] ?? .zero
                    $0.clientAddress = member.clientAddress
                    $0.peerAddress = member.peerAddress
                    $0.lastHeardMsAgo = UInt64(
                        max(0, heard.components.seconds * 1000 + heard.components.attoseconds / 1_000_000_000_000_000))
                }
            }
        }
    }

    func ringResponse(_ view: MembershipView, groups: [ShardGroupView], model: String) -> Infranaut_V1_RingResponse {
        .with {
            $0.status = .ok
            $0.shards = view.placement.assignments.map { assignment in
                .with {
                    $0.shard = UInt32(assignment.shard.rawValue)
                    $0.replicas = assignment.replicas.map(\.rawValue)
                    $0.epoch = assignment.epoch
                    if assignment.shard.rawValue < groups.count {
                        let group = groups[assignment.shard.rawValue]
                        $0.term = group.term
                        $0.leader = group.leader?.rawValue ?? ""
                        $0.voters = group.voters.map(\.rawValue).sorted()
                    }
                }
            }
            if !model.isEmpty {
                $0.modelID = model
                $0.modelShard = UInt32(view.placement.shard(forModel: model).rawValue)
            }
        }
    }
}

/// The answer to `fault`: set or clear this node's fault rules (partition drills).
extension RequestHandler {
    func faultResponse(_ request: Infranaut_V1_FaultRequest, from sender: String) -> Infranaut_V1_FaultResponse {
        let faults = peers.faults
        let snapshot: FaultInjector.Snapshot
        if request.clear {
            guard request.drop.isEmpty, request.delay.isEmpty, request.delayMs == 0, request.expireAfterMs == 0 else {
                return .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message:
                            "fault: clear removes every rule; send it without drop, delay, delay_ms or expire_after_ms")
                }
            }
            snapshot = faults.clear(by: sender)
        } else {
            do {
                snapshot = try faults.set(
                    drop: request.drop, delay: request.delay, delayBy: .milliseconds(Int(request.delayMs)),
                    lifetime: request.expireAfterMs == 0 ? nil : .milliseconds(Int(request.expireAfterMs)), by: sender)
            } catch {
                return .with {
                    $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "\(error)")
                    $0.rules = Self.wire(faults.snapshot)
                }
            }
        }
        return .with {
            $0.status = .ok
            $0.rules = Self.wire(snapshot)
            $0.expiresInMs = UInt64(max(0, snapshot.remaining.milliseconds))
            $0.framesDropped = snapshot.framesDropped
            $0.framesDelayed = snapshot.framesDelayed
        }
    }

    private static func wire(_ snapshot: FaultInjector.Snapshot) -> [Infranaut_V1_FaultRule] {
        snapshot.faults.sorted { $0.key < $1.key }.map { node, fault in
            .with {
                $0.node = node.rawValue
                switch fault {
                case .drop: $0.drop = true
                case .delay(let delay):
                    $0.delayMs = UInt32(clamping: delay.milliseconds)
                }
            }
        }
    }
}
