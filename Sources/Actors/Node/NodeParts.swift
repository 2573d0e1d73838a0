import Cluster
import Logging
import Storage
import Wire

/// The parts of a node that serve, wired together over its storage: membership, the peer clients
/// and the shards' Raft transport, the event relay, decommission, the request handler and both
/// listeners. Each long-running part is a service of the node's group (NodeService.swift).
struct NodeParts {
    let membership: MembershipService
    let authenticator: PeerAuthenticator
    let peers: PeerClients
    let events: EventRelay
    let notifier: Notifier
    let decommission: Decommission
    let handler: RequestHandler
    let peerServer: RequestServer
    let clientServer: RequestServer
    /// Storage failures reported by the shards (the node fail-stops on the first).
    let storageFailures: AsyncStream<String>
    /// The shards' Raft transport and timer.
    let raftTransport: RaftTransport
    let raftTicker: RaftTicker

    /// Builds the parts and opens the gossip listener, then the peer and client listeners. When a
    /// step fails, the listeners already opened are closed again.
    init(
        storage: NodeStorage, secret: ClusterSecret, settings: NodeSettings, logger: Logger,
        metrics: NodeMetrics = NodeMetrics()
    ) async throws {
        var clusterSettings = settings.cluster
        clusterSettings.nodeID = storage.nodeID
        clusterSettings.placement = storage.shape
        let authenticator = PeerAuthenticator(seal: PeerSeal(secret: secret, sender: clusterSettings.nodeID))
        let faults = FaultInjector(myself: NodeID(clusterSettings.nodeID), logger: logger)
        let membership = try MembershipService(
            settings: clusterSettings, authenticator: authenticator, faults: faults, logger: logger)
        let peers = PeerClients(authenticator: authenticator, faults: faults, maxReplyBytes: settings.maxPeerFrameBytes)
        let (storageFailures, reportFailure) = AsyncStream<String>.makeStream()
        let transport = RaftTransport(peers: peers, logger: logger) { id in await membership.peerAddress(of: id) }
        let ticker = RaftTicker(shardCount: storage.shards.count)
        let links = RaftLinks(transport: transport, ticker: ticker)
        for shard in storage.shards { await shard.attach(links, onFailure: { reason in reportFailure.yield(reason) }) }
        do {
            // The outbox and inbox are read from RocksDB: off the pool, like the rest of recovery.
            let isCoordinator = clusterSettings.roles.contains(.coordinator)
            let events = try await offPool("infranaut-events-load") { () throws(StorageError) -> EventRelay in
                try EventRelay(
                    database: storage.database, meta: storage.store.meta, writer: storage.writer,
                    membership: membership, peers: peers,
                    nodeID: storage.nodeID, isCoordinator: isCoordinator, logger: logger)
            }
            let decommission = Decommission(
                shards: storage.shards, events: events, membership: membership, peers: peers, logger: logger)
            let notifier = Notifier(
                relay: events, membership: membership, peers: peers, nodeID: storage.nodeID,
                isCoordinator: isCoordinator,
                logger: logger)
            let handler = RequestHandler(
                router: Router(shards: storage.shards), membership: membership, peers: peers,
                decommission: decommission,
                events: events, notifier: notifier, settings: settings, logger: logger, metrics: metrics,
                backup: { path in
                    try await offPool("infranaut-backup") { () throws(StorageError) in
                        try storage.database.checkpoint(to: path)
                    }
                })
            let peerServer = try Self.peerServer(
                handler: handler, authenticator: authenticator, faults: faults, settings: settings, logger: logger)
            do {
                clientServer = try Self.clientServer(handler: handler, settings: settings, logger: logger)
            } catch {
                await peerServer.close(grace: .zero)
                throw error
            }
            self.events = events
            self.notifier = notifier
            self.decommission = decommission
            self.handler = handler
            self.peerServer = peerServer
        } catch {
            await membership.close()
            throw error
        }
        self.membership = membership
        self.authenticator = authenticator
        self.peers = peers
        self.storageFailures = storageFailures
        self.raftTransport = transport
        self.raftTicker = ticker
    }

    /// The peer listener. Two listeners, each with its own contexts: peer requests (replication
    /// above all) never wait behind client requests, which may themselves be waiting on replication.
    private static func peerServer(
        handler: RequestHandler, authenticator: PeerAuthenticator, faults: FaultInjector, settings: NodeSettings,
        logger: Logger
    ) throws(TransportError) -> RequestServer {
        var serverSettings = RequestServerSettings()
        serverSettings.concurrency = settings.peerConcurrency
        serverSettings.maxMessageBytes = settings.maxPeerFrameBytes
        serverSettings.maxConnections = settings.maxPeerConnections
        // Connections that have not proved the secret yet: few at once, the oldest making room.
        serverSettings.maxUnvouchedConnections = settings.maxUnprovenPeerConnections
        serverSettings.shutdownGrace = settings.shutdownGrace
        let peerService = PeerService(handler: handler, authenticator: authenticator, faults: faults, logger: logger)
        return try RequestServer(
            listen: settings.peerListen, settings: serverSettings, logger: logger,
            vouchingHandler: { bytes in await peerService.answer(bytes) })
    }

    /// The client listener.
    private static func clientServer(handler: RequestHandler, settings: NodeSettings, logger: Logger)
        throws(TransportError) -> RequestServer
    {
        var serverSettings = RequestServerSettings()
        serverSettings.concurrency = settings.concurrency
        // nng's own limit sits 1 MiB above ours so that a slightly oversized request still gets a
        // TOO_LARGE answer; beyond that nng drops it and closes the connection.
        serverSettings.maxMessageBytes = settings.maxRequestBytes + (1 << 20)
        serverSettings.maxConnections = settings.maxClientConnections
        serverSettings.shutdownGrace = settings.shutdownGrace
        let clientService = ClientService(handler: handler, settings: settings, logger: logger)
        return try RequestServer(listen: settings.clientListen, settings: serverSettings, logger: logger) { bytes in
            await clientService.handle(bytes)
        }
    }
}
