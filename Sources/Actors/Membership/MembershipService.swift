public import Cluster
import Foundation
public import Logging
public import ServiceLifecycle
import SwiftProtobuf
import Synchronization
import Wire

/// Cluster settings of a node. A node without seeds forms a new cluster (of one, until others join).
public struct ClusterSettings: Sendable {
    /// Stable identity of the node in the cluster.
    public var nodeID: String
    /// nng address for peer traffic (PUSH/PULL). Port 0 picks a free port.
    public var listen = "tcp://127.0.0.1:7401"
    /// Cluster addresses of nodes to join through.
    public var seeds: [String] = []
    public var roles: Set<NodeRole> = [.worker, .coordinator]
    public var swim = SWIMSettings()
    public var placement = PlacementSettings()

    public init(nodeID: String) { self.nodeID = nodeID }
}

/// What `members` and `ring` report: one node's current view.
public struct MembershipView: Sendable {
    public var myself: Member
    public var members: [Member]
    public var lastHeard: [NodeID: Duration]
    public var placement: PlacementTable
    public var seesMajority: Bool
}

/// The actor shell around the pure ``SWIMInstance``: it feeds the state machine the messages that
/// arrive on the node's mailbox and the ticks it asks for, and carries out its directives (send a
/// message, schedule the next tick, report a member change). It also keeps the shard placement
/// derived from the live workers.
///
/// Time given to the state machine is the time since the shell started (a monotonic clock). The
/// shell keeps the one timer the state machine asks for: it sleeps until the scheduled tick, and a
/// schedule that moves the tick earlier wakes it.
///
/// As a ServiceLifecycle service it runs until the node shuts down; on graceful shutdown it
/// announces a graceful leave, lets it spread, then stops.
///
/// The node's fault rules (partition drills) apply to gossip both ways: frames to and from a node
/// whose traffic is dropped are neither sent nor handled; a delayed node's frames are sent, or
/// handled, after the delay.
public actor MembershipService: Service {
    private var instance: SWIMInstance
    private let mailbox: Mailbox
    private var senders: [String: MailboxSender] = [:]
    private var placement: PlacementTable
    let settings: ClusterSettings
    let logger: Logger
    private let origin = ContinuousClock.now
    private var nextTick: Duration = .zero
    /// Signalled when the next tick moves earlier, and on stop.
    private let tickMoved = Wakeup()
    private var stopped = false
    /// Signalled whenever a member's record changes (see ``notifyChanges(to:)``).
    private var watchers: [Wakeup] = []
    private let majority = Atomic<Bool>(true)
    /// Seeds other than this node's own address: a node that has some joins an existing cluster.
    private let otherSeeds: [String]
    /// Seals every frame this node sends and admits only sealed, fresh frames.
    let authenticator: PeerAuthenticator
    /// The node's fault rules; membership tells it which member listens where.
    let faults: FaultInjector
    /// Gossip held back by a delay rule, until its time (``delayLoop()``).
    private let delayed: AsyncStream<DelayedFrame>
    private let delay: AsyncStream<DelayedFrame>.Continuation
    let refusalLog = RateLimiter(every: .seconds(5))
    /// Unsealed frames are anyone's to send: one limit over all of them, whatever addresses they
    /// name, for the log lines they cause and for the notices this node sends back.
    let unsealedLog = RateLimiter(every: .seconds(5))
    let noticesSent = RateLimiter(every: .seconds(1))
    /// Largest unsealed (or wrongly sealed) gossip frame that is parsed at all, to find a refusal
    /// notice or the address to send one to.
    static let maxUnauthenticatedParse = 4_096

    /// The address peers reach this node on.
    public nonisolated let address: String

    public init(settings: ClusterSettings, authenticator: PeerAuthenticator, faults: FaultInjector, logger: Logger)
        throws(TransportError)
    {
        self.authenticator = authenticator
        self.faults = faults
        (delayed, delay) = AsyncStream.makeStream()
        // Gossip frames are small; cap their size, how many may wait and how many senders may be
        // connected, so a flood on the cluster port costs at most 256 MiB queued and 256 MiB of
        // partial frames.
        mailbox = try Mailbox(listen: settings.listen, maxMessageBytes: 1 << 20, bufferLimit: 256, maxConnections: 256)
        address = mailbox.boundAddress
        self.settings = settings
        var logger = logger
        logger[metadataKey: "node"] = "\(settings.nodeID)"
        self.logger = logger
        let myself = Member(id: NodeID(settings.nodeID), address: mailbox.boundAddress, roles: settings.roles)
        instance = SWIMInstance(settings: settings.swim, myself: myself, seed: UInt64.random(in: 1...UInt64.max))
        placement = PlacementTable(settings: settings.placement)
        _ = placement.update(members: instance.members)
        let bound = mailbox.boundAddress
        otherSeeds = settings.seeds.filter { $0 != bound }
        // A node that joins through seeds has no say until it has heard from the cluster: before
        // that it would see itself as primary of every shard and accept writes meant elsewhere.
        if !otherSeeds.isEmpty { majority.store(false, ordering: .releasing) }
    }

    /// Whether this node sees a strict majority of the members it has known (itself included).
    /// A node that does not stops accepting writes: it may be the minority side of a partition.
    public nonisolated var seesMajority: Bool { majority.load(ordering: .acquiring) }

    private func recomputeMajority() {
        // A node joining through seeds keeps refusing until it has heard of another member.
        guard instance.knownMemberCount > 1 || otherSeeds.isEmpty else { return }
        majority.store(instance.seesMajority, ordering: .releasing)
    }

    private var now: Duration { ContinuousClock.now - origin }

    /// The endpoints this node announces to the cluster; set before ``run()``.
    /// - Parameters:
    ///   - client: this node's client endpoint.
    ///   - peer: this node's peer endpoint.
    public func setEndpoints(client: String, peer: String) {
        instance.setEndpoints(client: client, peer: peer)
        notifyWatchers()
    }

    /// Wakes `wakeup` whenever a member's record changes (status, addresses, this node's leave).
    func notifyChanges(to wakeup: Wakeup) {
        watchers.append(wakeup)
    }

    private func notifyWatchers() {
        for watcher in watchers { watcher.signal() }
    }

    /// Joins through the seeds, then serves peer traffic and ticks until the node shuts down: on
    /// graceful shutdown it leaves the cluster gracefully (``stop(leave:)``), on cancellation it
    /// just stops.
    public func run() async {
        perform(instance.join(seeds: otherSeeds, now: now))
        await withDiscardingTaskGroup { group in
            group.addTask { await self.receiveLoop() }
            group.addTask { await self.tickLoop() }
            group.addTask { await self.delayLoop() }
            group.addTask {
                let graceful = (try? await gracefulShutdown()) != nil
                await self.stop(leave: graceful)
            }
        }
    }

    private func receiveLoop() async {
        for await bytes in mailbox.messages {
            handle(bytes)
        }
    }

    private func tickLoop() async {
        while !stopped && !Task.isCancelled {
            await tickMoved.wait(until: origin + nextTick)
            if !stopped && now >= nextTick { perform(instance.onTick(now: now)) }
        }
    }

    /// A gossip frame held back by a delay rule: one that arrived, or one to send.
    private struct DelayedFrame: Sendable {
        enum Frame {
            case arrived(body: [UInt8], bytes: Int)
            case toSend(SWIMMessage, address: String)
        }
        var due: ContinuousClock.Instant
        var frame: Frame
    }

    /// Hands each delayed frame on at its time. Ends when the service stops; frames still held then
    /// are dropped.
    private nonisolated func delayLoop() async {
        await withDiscardingTaskGroup { group in
            for await held in delayed {
                group.addTask {
                    guard (try? await Task.sleep(until: held.due, clock: .continuous)) != nil else { return }
                    await self.release(held.frame)
                }
            }
            group.cancelAll()
        }
    }

    private func release(_ frame: DelayedFrame.Frame) {
        guard !stopped else { return }
        switch frame {
        case .arrived(let body, let bytes): receive(body[...], bytes: bytes)
        case .toSend(let message, let address): transmit(message, to: address)
        }
    }

    private func handle(_ bytes: [UInt8]) {
        guard !stopped else { return }
        let opened: (header: SealHeader, body: ArraySlice<UInt8>)
        do throws(SealRefusal) {
            opened = try authenticator.admit(bytes, on: .gossip)
        } catch {
            refused(bytes, error)
            return
        }
        switch faults.fault(from: opened.header.sender) {
        case nil: receive(opened.body, bytes: bytes.count)
        case .drop: return
        case .delay(let by):
            delay.yield(DelayedFrame(due: .now + by, frame: .arrived(body: Array(opened.body), bytes: bytes.count)))
        }
    }

    /// Serves an admitted gossip frame's body (`bytes`: the frame's size, for the log).
    private func receive(_ body: ArraySlice<UInt8>, bytes: Int) {
        let message: SWIMMessage
        do {
            let frame = try Infranaut_V1_ClusterMessage(serializedBytes: Array(body))
            switch frame.body {
            case .swim(let swim):
                if let reason = settings.placement.mismatch(frame.shape, sender: swim.sender.address.printableForLog) {
                    return refuseShape(of: swim.sender.address, reason: reason)
                }
                message = try SWIMMessage(wire: swim)
            case .refusal(let notice):
                // Sealed with this cluster's secret: a member of it says why it refuses this node.
                if refusalLog.allow("shape notice") {
                    logger.error(
                        "a node of the cluster refuses this node",
                        metadata: [
                            "by": "\(notice.fromAddress.prefix(256))", "reason": "\(notice.reason.prefix(1_024))",
                        ])
                }
                return
            case nil:
                logger.debug("ignoring a cluster frame without a body", metadata: ["bytes": "\(bytes)"])
                return
            }
        } catch {
            logger.warning(
                "dropping a malformed cluster frame", metadata: ["bytes": "\(bytes)", "error": "\(error)"])
            return
        }
        perform(instance.onMessage(message, now: now))
    }

    private func perform(_ directives: [SWIMDirective]) {
        var changed = false
        for directive in directives {
            switch directive {
            case .send(let message, let to):
                send(message, to: to)
            case .scheduleTick(let at):
                let earlier = at < nextTick
                nextTick = at
                if earlier { tickMoved.signal() }
            case .memberChanged(let change):
                changed = true
                if !change.member.status.isLive, let sender = senders.removeValue(forKey: change.member.address) {
                    sender.close()
                }
                recomputeMajority()
                logger.info(
                    "member changed",
                    metadata: [
                        "member": "\(change.member.id)", "status": "\(change.member.status)",
                        "previous": "\(change.previousStatus.map { "\($0)" } ?? "new")",
                        "incarnation": "\(change.member.incarnation)",
                    ])
            }
        }
        guard changed else { return }
        learnAddresses()
        // Once per batch of changes (a push-pull from a big cluster brings dozens), and a no-op
        // unless the live workers changed: with 1,024 shards a placement takes ~20 ms at 100 nodes.
        let diff = placement.update(members: instance.members)
        if !diff.moves.isEmpty {
            logger.info("placement changed", metadata: ["shards": "\(diff.moves.count)"])
        }
        notifyWatchers()
    }

    /// Which member listens where, for the fault rules: every gossip and peer address a member
    /// announced (dead members included: a restarted node keeps its addresses).
    private func learnAddresses() {
        var addresses: [String: NodeID] = [:]
        for member in instance.members where member.id != instance.myself.id {
            addresses[member.address] = member.id
            if !member.peerAddress.isEmpty { addresses[member.peerAddress] = member.id }
        }
        faults.learn(addresses: addresses)
    }

    private func send(_ message: SWIMMessage, to address: String) {
        guard !stopped else { return }
        switch faults.fault(to: address) {
        case nil: transmit(message, to: address)
        case .drop: return
        case .delay(let by): delay.yield(DelayedFrame(due: .now + by, frame: .toSend(message, address: address)))
        }
    }

    private func transmit(_ message: SWIMMessage, to address: String) {
        let frame = Infranaut_V1_ClusterMessage.with {
            $0.version = 1
            $0.shape = settings.placement.shape
            $0.swim = message.wire
        }
        guard let body: [UInt8] = try? frame.serializedBytes() else { return }
        let bytes = authenticator.seal.seal(body, channel: .gossip, to: address).bytes
        let sender: MailboxSender
        if let known = senders[address] {
            sender = known
        } else {
            guard let made = try? MailboxSender(dial: address) else {
                logger.debug("cannot dial peer", metadata: ["address": "\(address)"])
                return
            }
            senders[address] = made
            sender = made
        }
        // Peer messages are best-effort (SWIM tolerates loss): handed to nng, never waited for.
        sender.post(bytes, timeout: .milliseconds(500))
    }

    /// The first of the shard's replicas in this node's placement that the view sees alive (the
    /// first replica when none is): where a node that does not know the shard's leader asks for it,
    /// so that a request does not wait for a replica that is cut off or gone.
    public func firstLiveReplica(of shard: ShardID) -> Member? {
        let replicas = placement.assignment(for: shard).replicas.compactMap { member($0) }
        return replicas.first { $0.status == .alive } ?? replicas.first
    }

    public nonisolated var nodeID: String { settings.nodeID }
    /// Whether this node has the coordinator role (keeps events, sends notifications).
    public nonisolated var isCoordinator: Bool { settings.roles.contains(.coordinator) }

    /// What this node knows of `id` (itself included).
    public func member(_ id: NodeID) -> Member? {
        id == instance.myself.id ? instance.myself : instance.member(id)
    }

    /// The last peer address known for `id`, whatever its status: Raft keeps talking to a group's
    /// replicas whatever the membership view thinks of them (a node that leaves must learn its
    /// removal; a node declared dead by mistake must not be cut off by the view).
    public func peerAddress(of id: NodeID) -> String? {
        guard let found = member(id), !found.peerAddress.isEmpty else { return nil }
        return found.peerAddress
    }

    /// Announces a graceful leave but keeps the node in the protocol (it still answers peers), so
    /// that it can hand its shards off before it stops. Its own placement then excludes it.
    public func announceLeave() {
        perform(instance.leave(now: now))
        _ = placement.update(members: instance.members)
        notifyWatchers()
    }

    /// The members with the coordinator role, this node included: live while alive or suspect
    /// (with a peer address), `left` after a graceful leave.
    public var coordinators: [DeliveryQueue.Coordinator] {
        instance.members.filter { $0.roles.contains(.coordinator) }.map {
            DeliveryQueue.Coordinator(
                id: $0.id.rawValue, address: $0.peerAddress, live: $0.status.isLive && !$0.peerAddress.isEmpty,
                left: $0.status == .left)
        }
    }

    /// Peer addresses of the live members other than this node.
    public var peerAddresses: [String] {
        instance.members.filter { $0.id != instance.myself.id && $0.status.isLive && !$0.peerAddress.isEmpty }.map(
            \.peerAddress)
    }

    /// This node's current view of the cluster.
    public var view: MembershipView {
        var heard: [NodeID: Duration] = [:]
        for member in instance.members {
            if let at = instance.lastHeard(member.id) { heard[member.id] = now - at }
        }
        return MembershipView(
            myself: instance.myself, members: instance.members, lastHeard: heard, placement: placement,
            seesMajority: seesMajority)
    }

    /// Closes the gossip listener of a node whose start-up failed before ``run()``.
    func close() async {
        await stop(leave: false)
    }

    /// Stops peer traffic. With `leave`, first announces a graceful leave and gives the
    /// announcement a moment to spread.
    private func stop(leave: Bool) async {
        guard !stopped else { return }
        if leave {
            perform(instance.leave(now: now))
            notifyWatchers()
            try? await Task.sleep(for: .milliseconds(300))
        }
        stopped = true
        tickMoved.signal()
        delay.finish()
        await mailbox.close()
        for sender in senders.values { sender.close() }
        senders = [:]
    }
}
