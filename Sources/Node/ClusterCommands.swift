import ArgumentParser
import Cluster
import Drill
import Foundation
import Wire

struct MembersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "List the cluster's members as one node sees them: status, incarnation, roles, shards held."
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Flag(help: "Print as JSON.")
    var json = false

    struct Member: Encodable {
        var id: String
        var address: String
        var client_address: String
        var peer_address: String
        var status: String
        var incarnation: UInt64
        var roles: [String]
        var primaries: [UInt32]
        var followers: [UInt32]
        var last_heard_ms_ago: UInt64
    }

    struct Output: Encodable {
        var node: String
        var self_id: String
        var sees_majority: Bool
        var shard_count: UInt32
        var replication_factor: UInt32
        var members: [Member]
        var refused: Refused
    }

    /// What the answering node refused since it started.
    struct Refused: Encodable {
        var peer_body_on_client: UInt64
        var not_sealed: UInt64
        var bad_mac: UInt64
        var wrong_channel: UInt64
        var stale: UInt64
        var replayed: UInt64
    }

    func run() async throws {
        let client = try NodeClient(address: node, timeout: .seconds(5))
        defer { client.close() }
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.members = .init()
            })
        guard case .members(let members) = response.body, members.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        let output = Output(
            node: node, self_id: members.selfID, sees_majority: members.seesMajority, shard_count: members.shardCount,
            replication_factor: members.replicationFactor,
            members: members.members.map {
                Member(
                    id: $0.id, address: $0.address, client_address: $0.clientAddress, peer_address: $0.peerAddress,
                    status: "\($0.state)", incarnation: $0.incarnation, roles: $0.roles,
                    primaries: $0.primaries, followers: $0.followers, last_heard_ms_ago: $0.lastHeardMsAgo)
            },
            refused: Refused(
                peer_body_on_client: members.refused.peerBodyOnClient, not_sealed: members.refused.notSealed,
                bad_mac: members.refused.badMac, wrong_channel: members.refused.wrongChannel,
                stale: members.refused.stale,
                replayed: members.refused.replayed))
        if json {
            try printJSON(output)
            return
        }
        print(
            "cluster as seen by \(members.selfID) (\(members.shardCount) shards, replication factor \(members.replicationFactor)\(members.seesMajority ? "" : ", NO MAJORITY"))"
        )
        var rows = [["id", "address", "status", "incarnation", "roles", "primaries", "followers", "last heard"]]
        for m in output.members {
            rows.append([
                m.id, m.address, m.status, String(m.incarnation), m.roles.joined(separator: ","),
                String(m.primaries.count), String(m.followers.count),
                m.id == members.selfID ? "self" : "\(m.last_heard_ms_ago) ms ago",
            ])
        }
        printTable(rows)
    }
}

struct RingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ring",
        abstract:
            "Show shard placement and groups: each shard's wanted replicas (preferred leader first), and the asked node's view of its Raft group (term, leader, voters)."
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Also show which shard this model maps to.")
    var model: String?

    @Flag(help: "Print as JSON.")
    var json = false

    struct Shard: Encodable {
        var shard: UInt32
        var replicas: [String]
        var epoch: UInt64
        var term: UInt64
        var leader: String
        var voters: [String]
    }

    struct Output: Encodable {
        var shards: [Shard]
        var model: String?
        var model_shard: UInt32?
    }

    func run() async throws {
        let client = try NodeClient(address: node, timeout: .seconds(5))
        defer { client.close() }
        let response = try await client.send(
            .with {
                $0.version = 1
                $0.ring = .with { $0.modelID = model ?? "" }
            })
        guard case .ring(let ring) = response.body, ring.status.code == .ok else {
            throw CLIError("\(node): \(statusLine(response.outcome))")
        }
        let output = Output(
            shards: ring.shards.map {
                Shard(
                    shard: $0.shard, replicas: $0.replicas, epoch: $0.epoch, term: $0.term, leader: $0.leader,
                    voters: $0.voters)
            },
            model: model, model_shard: model == nil ? nil : ring.modelShard)
        if json {
            try printJSON(output)
            return
        }
        if let model { print("model \(model) -> shard \(ring.modelShard)") }
        var rows = [["shard", "replicas", "epoch", "term", "leader", "voters"]]
        for s in output.shards {
            rows.append([
                String(s.shard), s.replicas.joined(separator: ","), String(s.epoch), String(s.term),
                s.leader.isEmpty ? "-" : s.leader, s.voters.isEmpty ? "-" : s.voters.joined(separator: ","),
            ])
        }
        printTable(rows)
    }
}

struct LeaveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave",
        abstract: "Decommission a node: it hands every shard it holds off to the new replicas, then exits.",
        discussion: """
            The node refuses clients from the moment it is asked, announces that it leaves, waits until
            its peers see it gone, and asks each shard's new primary to bring the new followers up to
            date. It exits only when every shard it held is confirmed on its new replica set;
            otherwise the command fails, the node stays up (refusing clients), and the command can be
            repeated. To restart a node in place (a rolling upgrade), stop it with SIGTERM instead.
            """
    )

    @Option(help: "Client address of the node to decommission.")
    var node = "tcp://127.0.0.1:7400"

    @Option(
        name: .customLong("cluster-secret-file"),
        help:
            "File holding the cluster secret (leave changes the cluster, so it needs the secret). Default: $INFRANAUT_CLUSTER_SECRET."
    )
    var clusterSecretFile: String?

    @Flag(help: "Print as JSON.")
    var json = false

    struct Output: Encodable {
        var node: String
        var shards_held: UInt32
        var shards_handed_off: UInt32
        var took_ms: UInt64
    }

    func run() async throws {
        // Leave changes the cluster: it goes to the node's peer listener, sealed with the secret.
        let response = try await askWithSecret(
            node: node, secretFile: clusterSecretFile, .leave(.init()), what: "leave", timeout: .seconds(120))
        guard case .leave(let leave) = response.body, leave.status.code == .ok else {
            throw CLIError("\(node) did not leave: \(statusLine(response.outcome))")
        }
        let output = Output(
            node: node, shards_held: leave.shardsHeld, shards_handed_off: leave.shardsHandedOff, took_ms: leave.tookMs)
        if json {
            try printJSON(output)
        } else {
            print(
                "\(node) left the cluster: \(leave.shardsHandedOff) of \(leave.shardsHeld) shards it held are confirmed on their new replicas (\(leave.tookMs) ms); it is stopping"
            )
        }
    }
}
