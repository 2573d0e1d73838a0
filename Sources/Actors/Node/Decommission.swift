import Cluster
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Wire

/// `infranaut leave`: takes a node out of the cluster without lowering any shard's replica count.
///
/// Steps: refuse client requests; announce the leave (SWIM `left`); wait until every live peer
/// sees this node as left, so their placements no longer count it; then, for every shard this
/// node holds data of, ask the shard's primary in the new placement to bring its followers up to
/// date (`HandOffRequest`) and check that the followers it confirmed are the new replica set.
/// Only when every shard is confirmed does the node stop; otherwise it answers with what is
/// missing and stays up (refusing clients), and `leave` can be asked again.
///
/// As a ServiceLifecycle service it runs until a leave has handed everything off, and then
/// returns, which shuts the node down.
final class Decommission: Service {
    private let shards: [ShardActor]
    private let events: EventRelay
    private let membership: MembershipService
    private let peers: PeerClients
    private let logger: Logger
    private let state = Mutex(State())
    /// Signalled once the node handed everything off (and at graceful shutdown).
    private let handedOff = Wakeup()

    private struct State {
        var running = false
        var announced = false
        var finished = false
    }

    /// How long one shard's hand-off may take, and all of them together.
    static let perShardTimeout: Duration = .seconds(10)
    static let totalTimeout: Duration = .seconds(90)

    init(shards: [ShardActor], events: EventRelay, membership: MembershipService, peers: PeerClients, logger: Logger) {
        self.shards = shards
        self.events = events
        self.membership = membership
        self.peers = peers
        self.logger = logger
    }

    /// Returns once a leave handed every shard off (the node then shuts down), or at graceful
    /// shutdown or cancellation.
    func run() async {
        await withTaskCancellationOrGracefulShutdownHandler {
            while !state.withLock({ $0.finished }) && !isStopping {
                await handedOff.wait()
            }
        } onCancelOrGracefulShutdown: { [handedOff] in
            handedOff.signal()
        }
        guard state.withLock({ $0.finished }) else { return }
        // Let the leave's answer leave before the node shuts down.
        try? await Task.sleep(for: .milliseconds(200))
    }

    func leave(refuseClients: () -> Void) async -> Infranaut_V1_LeaveResponse {
        let started = ContinuousClock.now
        func failed(_ code: Infranaut_V1_StatusCode, _ message: String, held: Int = 0, done: Int = 0)
            -> Infranaut_V1_LeaveResponse
        {
            .with {
                $0.status = Infranaut_V1_Status(code: code, message: message)
                $0.shardsHeld = UInt32(held)
                $0.shardsHandedOff = UInt32(done)
                $0.tookMs = UInt64((ContinuousClock.now - started).inSeconds * 1000)
            }
        }
        guard
            state.withLock({ state in
                guard !state.running else { return false }
                state.running = true
                return true
            })
        else { return failed(.unavailable, "a leave is already in progress on this node") }
        defer { state.withLock { $0.running = false } }

        let peers = await membership.peerAddresses
        let announced = state.withLock { $0.announced }
        if !announced {
            guard !peers.isEmpty else {
                return failed(
                    .invalidArgument,
                    "this node is the cluster's only live member: its data would have nowhere to go; stop it instead")
            }
            refuseClients()
            // Shards whose only copy is here (no follower, e.g. replication factor 1) go to their
            // next primary now, before the leave lets it take writes: otherwise it would start an
            // empty history of its own and the two could not be reconciled.
            let destinations = await membership.replicaAddressesWithoutMe()
            for shard in shards where await shard.appliedSequence > 0 {
                guard let followers = await membership.followerAddresses(shard: shard.shard), followers.isEmpty,
                    let next = destinations[shard.shard].first
                else { continue }
                var seeded = false
                while !seeded && ContinuousClock.now < started + Self.totalTimeout {
                    seeded = await shard.seed(next)
                    if !seeded { try? await Task.sleep(for: .milliseconds(200)) }
                }
                guard seeded else {
                    return failed(
                        .unavailable,
                        "shard \(shard.shard) (held only here) could not be copied to \(next); the node stays in the cluster; ask again"
                    )
                }
            }
            await membership.announceLeave()
            state.withLock { $0.announced = true }
            logger.notice("leaving the cluster: handing shards off")
        }
        let me = membership.nodeID
        let deadline = ContinuousClock.now + Self.totalTimeout
        // Every live peer must see this node as left before it can be sure their placements moved.
        while !(await allPeersSeeLeft(peers, me: me)) {
            guard ContinuousClock.now < deadline else {
                return failed(.unavailable, "peers did not see this node leave within \(Self.totalTimeout); ask again")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }

        let myAddress = await membership.view.myself.peerAddress
        var held: [ShardActor] = []
        for shard in shards where await shard.appliedSequence > 0 { held.append(shard) }
        var done = 0
        var missing: [String] = []
        for shard in held {
            if let problem = await handOff(shard, from: myAddress, peers: peers, until: deadline) {
                missing.append("\(shard.shard) (\(problem))")
            } else {
                done += 1
            }
        }
        guard missing.isEmpty else {
            return failed(
                .unavailable,
                "shards not confirmed on their new replicas: \(missing.joined(separator: "; ")); the node stays up; ask again",
                held: held.count, done: done)
        }
        // Events published here and not yet delivered everywhere go to a peer, which delivers them
        // (coordinators drop the copies they already have, by id).
        var reachable = peers
        for event in await events.pendingEvents() {
            guard ContinuousClock.now < deadline, let peer = await republish(event, peers: reachable) else {
                return failed(
                    .unavailable,
                    "event \(event.id) could not be handed to a peer in time; the node stays up; ask again",
                    held: held.count, done: done)
            }
            // The peer that took this one is asked first for the next.
            reachable = [peer] + reachable.filter { $0 != peer }
        }
        logger.notice("handed every shard off; stopping", metadata: ["shards": "\(done)"])
        state.withLock { $0.finished = true }
        handedOff.signal()
        return .with {
            $0.status = .ok
            $0.shardsHeld = UInt32(held.count)
            $0.shardsHandedOff = UInt32(done)
            $0.tookMs = UInt64((ContinuousClock.now - started).inSeconds * 1000)
        }
    }

    private func allPeersSeeLeft(_ peers: [String], me: String) async -> Bool {
        for peer in peers {
            let request = Infranaut_V1_Request.with {
                $0.version = 1
                $0.members = .init()
            }
            // A peer that does not answer routes nothing here either (and this node, having left,
            // no longer learns whether it died): it does not hold the leave up.
            guard let reply = try? await send(request, to: peer), case .members(let members) = reply.body else {
                continue
            }
            // Left (or dead, or already forgotten): the peer's placement no longer counts this node.
            if let entry = members.members.first(where: { $0.id == me }),
                entry.state == .alive || entry.state == .suspect
            {
                return false
            }
        }
        return true
    }

    /// Asks the shard's new primary (in a live peer's placement: this node's own view stopped
    /// changing when it left) to adopt this node's copy if it is newer and bring its followers up to
    /// date, until the primary confirms a history at least as far as this node's and followers that
    /// cover the new replica set.
    /// Nil once handed off; otherwise what stood in the way last.
    private func handOff(
        _ shard: ShardActor, from myAddress: String, peers: [String], until deadline: ContinuousClock.Instant
    ) async -> String? {
        let number = shard.shard
        let applied = await shard.appliedSequence
        let lastTerm = await shard.lastTerm
        let lastOp = await shard.lastOpKey
        var problem = "the leave's time ran out before this shard was tried"
        while ContinuousClock.now < deadline {
            problem = "no peer answered with the shard's placement"
            if let replicas = await currentReplicas(of: number, peers: peers), let primary = replicas.first {
                let request = Infranaut_V1_Request.with {
                    $0.version = 1
                    $0.hops = 1
                    $0.handOff = .with {
                        $0.shard = UInt32(number)
                        $0.fromNode = membership.nodeID
                        $0.applied = applied
                        $0.lastTerm = lastTerm
                        $0.fromAddress = myAddress
                        $0.lastModel = lastOp?.model ?? ""
                        $0.lastKey = lastOp?.key ?? ""
                    }
                }
                do {
                    let reply = try await send(request, to: primary, timeout: Self.perShardTimeout + .seconds(2))
                    guard case .handOff(let handOff) = reply.body, handOff.status.code == .ok else {
                        throw DecommissionProblem("\(primary): \(reply.outcome.message)")
                    }
                    guard (handOff.lastTerm, handOff.applied) >= (lastTerm, applied), handOff.containsLeavingCopy else {
                        throw DecommissionProblem(
                            "\(primary) does not hold this node's last op (sequence \(applied), term \(lastTerm))")
                    }
                    guard Set(replicas.dropFirst()).isSubset(of: Set(handOff.followers)) else {
                        throw DecommissionProblem(
                            "\(primary) confirmed followers \(handOff.followers), not \(Array(replicas.dropFirst()))")
                    }
                    logger.debug(
                        "shard handed off",
                        metadata: ["shard": "\(number)", "primary": "\(primary)", "applied": "\(handOff.applied)"])
                    return nil
                } catch {
                    problem = "\(error)"
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return problem
    }

    /// The client addresses of the shard's replicas, primary first, as the first answering peer
    /// places them.
    private func currentReplicas(of shard: Int, peers: [String]) async -> [String]? {
        for peer in peers {
            guard
                let ring = try? await send(
                    .with {
                        $0.version = 1
                        $0.ring = .init()
                    }, to: peer), case .ring(let placement) = ring.body,
                shard < placement.shards.count,
                let view = try? await send(
                    .with {
                        $0.version = 1
                        $0.members = .init()
                    }, to: peer), case .members(let members) = view.body
            else { continue }
            let addresses = Dictionary(members.members.map { ($0.id, $0.peerAddress) }, uniquingKeysWith: { $1 })
            let replicas = placement.shards[shard].replicas.compactMap { addresses[$0] }.filter { !$0.isEmpty }
            guard replicas.count == placement.shards[shard].replicas.count else { continue }
            return replicas
        }
        return nil
    }

    /// Publishes `event` through the first peer that takes it; that peer's address, or nil.
    private func republish(_ event: Infranaut_V1_ClusterEvent, peers: [String]) async -> String? {
        for peer in peers {
            let request = Infranaut_V1_Request.with {
                $0.version = 1
                $0.publishEvent = .with { $0.event = event }
            }
            if let reply = try? await send(request, to: peer), case .publishEvent(let answer) = reply.body,
                answer.status.code == .ok
            {
                return peer
            }
        }
        return nil
    }

    private func send(_ request: Infranaut_V1_Request, to address: String, timeout: Duration = .seconds(5)) async throws
        -> Infranaut_V1_Response
    {
        try await peers.call(request, to: address, timeout: timeout)
    }
}

private struct DecommissionProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
