import Cluster
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Wire

/// `infranaut leave`: takes a node out of the cluster without lowering any shard's replica count.
///
/// Steps: refuse client requests; announce the leave (SWIM `left`); wait until every live peer
/// sees this node as left, so their placements no longer count it. From then on every group this
/// node is a voter of moves off it through Raft: where this node leads, it adds the new replica
/// and hands leadership over; the new leader (or the existing one) removes it
/// (`GroupPlan`). The node stops only once no group counts it as a voter any more; otherwise it
/// answers with the groups that still do and stays up (refusing clients), and `leave` can be
/// asked again.
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

    /// How long moving every group off the node may take.
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

        var held = 0
        for shard in shards where await shard.voters.contains(NodeID(me)) { held += 1 }
        var remaining: [Int] = []
        while true {
            remaining = []
            for shard in shards where await shard.voters.contains(NodeID(me)) {
                await shard.transferLeadershipIfLeading()
                remaining.append(shard.shard)
            }
            guard !remaining.isEmpty, ContinuousClock.now < deadline else { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        let done = held - remaining.count
        guard remaining.isEmpty else {
            let listed = remaining.prefix(20).map(String.init).joined(separator: ", ")
            return failed(
                .unavailable,
                "\(remaining.count) shards still count this node as a voter (\(listed)\(remaining.count > 20 ? ", …" : "")); the node stays up; ask again",
                held: held, done: done)
        }
        // Events published here and not yet delivered everywhere go to a peer, which delivers them
        // (coordinators drop the copies they already have, by id).
        var reachable = peers
        for event in await events.pendingEvents() {
            guard ContinuousClock.now < deadline, let peer = await republish(event, peers: reachable) else {
                return failed(
                    .unavailable,
                    "event \(event.id) could not be handed to a peer in time; the node stays up; ask again",
                    held: held, done: done)
            }
            // The peer that took this one is asked first for the next.
            reachable = [peer] + reachable.filter { $0 != peer }
        }
        logger.notice("handed every shard off; stopping", metadata: ["shards": "\(done)"])
        state.withLock { $0.finished = true }
        handedOff.signal()
        return .with {
            $0.status = .ok
            $0.shardsHeld = UInt32(held)
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
