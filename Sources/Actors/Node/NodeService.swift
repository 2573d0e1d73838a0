import Cluster
import Foundation
public import Logging
public import ServiceLifecycle
import Storage
import Wire

/// A running Infranaut node: RocksDB, the shards recovered from it, and the client endpoint.
///
/// `run()` opens and recovers everything before it listens, serves until graceful shutdown
/// (SIGTERM/SIGINT through the ServiceGroup), then drains: new requests get a retryable
/// UNAVAILABLE, requests in flight finish, every shard checkpoints, the WAL writer stops and the
/// database closes. A `kill -9` at any point loses nothing that was acknowledged: acks wait for the
/// WAL fsync, and recovery replays the op log after the last checkpoint.
public final class NodeService: Service {
    private let settings: NodeSettings
    private let logger: Logger
    private let onReady: @Sendable (ReadyInfo) -> Void

    /// What a node reports once it serves.
    public struct ReadyInfo: Sendable {
        public var client: String
        public var cluster: String
        public var peer: String
        public var nodeID: String
    }

    /// - Parameter onReady: called with the bound addresses once the node serves.
    public init(settings: NodeSettings, logger: Logger, onReady: @escaping @Sendable (ReadyInfo) -> Void = { _ in }) {
        self.settings = settings
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: settings.dataDirectory, withIntermediateDirectories: true)
        var options = DatabaseOptions()
        options.compression = settings.compression
        let database = try Database.open(
            path: settings.dataDirectory + "/rocksdb", columnFamilies: ShardStore.families, options: options)
        let writer = GroupCommitWriter(database: database)
        defer {
            writer.shutdown()
            database.close()
        }
        let store = try ShardStore(database: database)
        var requestedShape = settings.cluster.placement
        requestedShape.shardCount = settings.shardCount
        let shape = try store.placement(requested: requestedShape)
        let shardCount = shape.shardCount
        if shape != requestedShape {
            logger.warning("data directory was created with another placement shape; using the stored one",
                           metadata: ["stored": "\(shardCount) shards, replica load \(shape.replicaLoadPermille)‰",
                                      "requested": "\(settings.shardCount) shards, replica load \(requestedShape.replicaLoadPermille)‰"])
        }
        let started = ContinuousClock.now
        var recovered: [ShardActor] = []
        for shard in 0..<shardCount {
            recovered.append(try ShardActor(shard: shard, store: store, writer: writer, settings: settings.shard, logger: logger))
        }
        let shards = recovered
        logger.info("recovered", metadata: ["shards": "\(shardCount)", "took": "\(ContinuousClock.now - started)"])

        var clusterSettings = settings.cluster
        clusterSettings.nodeID = try store.nodeID(requested: clusterSettings.nodeID)
        clusterSettings.placement = shape
        guard let secret = settings.secret else {
            throw NodeFailure(reason: "no cluster secret: every node needs one (--cluster-secret-file)")
        }
        let authenticator = PeerAuthenticator(seal: PeerSeal(secret: secret, sender: clusterSettings.nodeID))
        let membership = try MembershipService(settings: clusterSettings, authenticator: authenticator, logger: logger)

        // Replication: the primary of a shard sends its ops to the followers' peer listeners,
        // over the same peer clients that forwarding uses. A send may take no longer than an
        // ingest waits for its followers, so a dead follower cannot hold an ingest past the
        // forward timeout of the node that relayed it.
        let peers = PeerClients(authenticator: authenticator, maxReplyBytes: settings.maxPeerFrameBytes)
        let sendTimeout = settings.replicationAckTimeout
        let snapshotTimeout = settings.snapshotTimeout
        let link = ReplicationLink(
            nodeID: clusterSettings.nodeID, ackTimeout: settings.replicationAckTimeout,
            followers: { shard in await membership.followerAddresses(shard: shard) },
            send: { address, request in
                // A whole-shard snapshot may take longer to move and install than a batch of ops:
                // its sends get the ack timeout plus a second per 16 MiB (a fetched one, whose size
                // is unknown here, up to `snapshotTimeout`). Not more: a send to a peer that died
                // waits for the whole timeout, and the shard's replication waits with it.
                let bytes: [UInt8] = try request.serializedBytes()
                let timeout: Duration
                switch request.body {
                case .installSnapshot: timeout = min(snapshotTimeout, sendTimeout + .seconds(Double(bytes.count) / Double(16 << 20)))
                case .fetchSnapshot: timeout = min(snapshotTimeout, sendTimeout * 4)
                default: timeout = sendTimeout
                }
                return try await peers.call(encoded: bytes, to: address, timeout: timeout)
            })
        // Fail-stop: a shard that cannot write stops serving, and a replica that answers "busy" to
        // every replication request would keep its primaries from acknowledging anything. So a
        // storage failure stops the whole node; its peers then declare it dead and move on.
        let (storageFailures, reportFailure) = AsyncStream<String>.makeStream()
        for shard in shards { await shard.attach(link, onFailure: { reason in reportFailure.yield(reason) }) }
        let events = try EventRelay(
            database: database, meta: store.meta, writer: writer, membership: membership, peers: peers,
            nodeID: clusterSettings.nodeID, isCoordinator: clusterSettings.roles.contains(.coordinator), logger: logger)
        let decommission = Decommission(shards: shards, events: events, membership: membership, peers: peers, logger: logger)
        let handler = RequestHandler(
            router: Router(shards: shards), membership: membership, peers: peers, decommission: decommission,
            events: events, settings: settings, logger: logger)
        // Two listeners, each with its own contexts: peer requests (replication above all) never
        // wait behind client requests, which may themselves be waiting on replication.
        var peerServerSettings = RequestServerSettings()
        peerServerSettings.concurrency = settings.peerConcurrency
        peerServerSettings.maxMessageBytes = settings.maxPeerFrameBytes
        peerServerSettings.maxConnections = settings.maxPeerConnections
        // Connections that have not proved the secret yet: few at once, the oldest making room.
        peerServerSettings.maxUnvouchedConnections = settings.maxUnprovenPeerConnections
        peerServerSettings.shutdownGrace = settings.shutdownGrace
        let peerService = PeerService(handler: handler, authenticator: authenticator, logger: logger)
        let peerServer = try RequestServer(
            listen: settings.peerListen, settings: peerServerSettings, logger: logger,
            vouchingHandler: { bytes in await peerService.answer(bytes) })
        var serverSettings = RequestServerSettings()
        serverSettings.concurrency = settings.concurrency
        // nng's own limit sits 1 MiB above ours so that a slightly oversized request still gets a
        // TOO_LARGE answer; beyond that nng drops it and closes the connection.
        serverSettings.maxMessageBytes = settings.maxRequestBytes + (1 << 20)
        serverSettings.maxConnections = settings.maxClientConnections
        serverSettings.shutdownGrace = settings.shutdownGrace
        let clientService = ClientService(handler: handler, settings: settings, logger: logger)
        let server = try RequestServer(listen: settings.clientListen, settings: serverSettings, logger: logger) { bytes in
            await clientService.handle(bytes)
        }
        let clientAddress = server.boundAddress
        let peerAddress = peerServer.boundAddress
        let membershipTask = Task { await membership.run(clientAddress: clientAddress, peerAddress: peerAddress) }
        let deliveries = Task { await events.run() }
        logger.info("serving", metadata: [
            "client": "\(server.boundAddress)", "cluster": "\(membership.address)", "peer": "\(peerAddress)",
            "node": "\(clusterSettings.nodeID)", "data": "\(settings.dataDirectory)", "nng": "\(nngVersion)",
        ])
        onReady(ReadyInfo(client: server.boundAddress, cluster: membership.address, peer: peerAddress, nodeID: clusterSettings.nodeID))

        // Periodic checkpoints and anti-entropy sweeps until graceful shutdown, until `leave`
        // handed everything off, or until a storage failure (then `failure` says why).
        let checkpointInterval = settings.checkpointInterval
        let sweepInterval = settings.replicationSweepInterval
        let logger = self.logger
        let failure: String? = await cancelWhenGracefulShutdown {
            await withTaskGroup(of: String?.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: checkpointInterval)
                        for shard in shards { await shard.checkpoint() }
                    }
                    return nil
                }
                group.addTask {
                    for await _ in decommission.finished { break }
                    return nil
                }
                group.addTask {
                    for await reason in storageFailures {
                        logger.critical("stopping the node after a storage failure", metadata: ["reason": "\(reason)"])
                        return reason
                    }
                    return nil
                }
                group.addTask {
                    // Anti-entropy: idle shards get their new followers up to date too.
                    while !Task.isCancelled {
                        try? await Task.sleep(for: sweepInterval)
                        for shard in shards where !Task.isCancelled { await shard.sweepFollowers() }
                        peers.retain(only: Set(await membership.peerAddresses))
                        authenticator.prune()
                    }
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
        } ?? nil

        logger.info("shutting down")
        // Refuse writes first: once peers see the leave they route this node's shards elsewhere.
        deliveries.cancel()
        await deliveries.value
        handler.startDraining()
        await membership.stop(leave: true)
        await membershipTask.value
        await server.close(grace: settings.shutdownGrace)
        await peerServer.close(grace: settings.shutdownGrace)
        for shard in shards { await shard.stop() }
        reportFailure.finish()
        logger.info("stopped")
        if let failure { throw NodeFailure(reason: failure) }
    }
}

/// The node stopped itself because storage failed (a restart recovers what is durable).
public struct NodeFailure: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "storage failure: \(reason); restart the node to recover what is durable" }
}
