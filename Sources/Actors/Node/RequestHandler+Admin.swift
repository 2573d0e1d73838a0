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
            }
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
