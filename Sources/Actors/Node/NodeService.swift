import Cluster
import Foundation
public import Logging
public import ServiceLifecycle
import Storage
import Synchronization
import Wire

/// A running Infranaut node: RocksDB, the shards recovered from it, the membership and the
/// listeners, each long-running part a service of one ServiceGroup that the node owns.
///
/// `run()` opens and recovers everything before it listens, serves until graceful shutdown
/// (SIGTERM/SIGINT through the enclosing ServiceGroup), until `leave` handed everything off, or
/// until a storage failure, then drains: new requests get a retryable UNAVAILABLE, requests in
/// flight finish, every shard finishes its queued writes, the WAL writer stops and the database
/// closes. A `kill -9` at any point loses nothing that was acknowledged: an ack waits until a
/// majority of the shard's replicas hold the op durably, and recovery replays the Raft log.
public final class NodeService: Service {
    private let settings: NodeSettings
    private let logger: Logger
    private let onReady: @Sendable (ReadyInfo) -> Void
    private let onHTTP: @Sendable (String) -> Void

    /// What a node reports once it serves.
    public struct ReadyInfo: Sendable {
        public var client: String
        public var cluster: String
        public var peer: String
        public var nodeID: String
    }

    /// - Parameters:
    ///   - onReady: called with the bound addresses once the node serves.
    ///   - onHTTP: called with the operators' HTTP address (`http://HOST:PORT`) once it is bound.
    public init(
        settings: NodeSettings, logger: Logger, onReady: @escaping @Sendable (ReadyInfo) -> Void = { _ in },
        onHTTP: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.settings = settings
        self.logger = logger
        self.onReady = onReady
        self.onHTTP = onHTTP
    }

    public func run() async throws {
        guard let secret = settings.secret else {
            throw NodeStartFailure(reason: "no cluster secret: every node needs one (--cluster-secret-file)")
        }
        let metrics = NodeMetrics()
        let storage = try await NodeStorage.open(settings: settings, logger: logger, metrics: metrics)
        do {
            let parts = try await NodeParts(
                storage: storage, secret: secret, settings: settings, logger: logger, metrics: metrics)
            try await serve(parts, storage: storage)
        } catch {
            await storage.close()
            throw error
        }
        await storage.close()
        logger.info("stopped")
    }

    /// Runs the node's services until the group ends.
    ///
    /// A ServiceGroup starts its services in the order listed and, when it shuts down, stops them
    /// one at a time in the reverse order, each only once the one before has returned. So the node
    /// stops in this order, which replication and hand-off rely on (docs/replication.md):
    /// 1. the fail-stop watch and decommission; the group reconciler;
    /// 2. event delivery (attempts in flight are awaited);
    /// 3. the handler drains: every new request but `members` and `ring` is answered UNAVAILABLE
    ///    (retryable), and the peer clients close;
    /// 4. membership: announce a graceful leave, let it spread, stop gossip;
    /// 5. the client listener, then the peer listener: wait for requests in flight, then close;
    /// 6. the shards: each finishes its queued writes; then the Raft timer and transport stop.
    /// Then `run()` stops the WAL writer and closes the database. Every service ends the group
    /// gracefully when it returns: decommission returns once `leave` handed everything off, the
    /// fail-stop watch throws at the first storage failure (`run()` then throws it).
    private func serve(_ parts: NodeParts, storage: NodeStorage) async throws {
        let clientAddress = parts.clientServer.boundAddress
        let peerAddress = parts.peerServer.boundAddress
        await parts.membership.setEndpoints(client: clientAddress, peer: peerAddress)
        let serving = ServingFlag()
        var operations: [(any Service, String)] = []
        if let listen = settings.httpListen {
            let (host, port) = try Self.hostAndPort(listen)
            let http = OperationsHTTP(
                host: host, port: port, metrics: parts.handler.metrics, membership: parts.membership,
                shards: storage.shards, events: parts.events, notifier: parts.notifier, handler: parts.handler,
                storage: storage, dataDirectory: settings.dataDirectory,
                serving: { serving.value }, joining: !settings.cluster.seeds.isEmpty, onBound: onHTTP, logger: logger)
            operations.append((http.application(), "http listener"))
        }
        let services: [(any Service, String)] =
            operations + [
                (
                    ShardGroups(
                        shards: storage.shards, ticker: parts.raftTicker, transport: parts.raftTransport,
                        checkpointInterval: settings.checkpointInterval),
                    "shard groups"
                ),
                (parts.peerServer, "peer listener"),
                (parts.clientServer, "client listener"),
                (parts.membership, "membership"),
                (parts.handler, "request handler"),
                (parts.events, "event relay"),
                (
                    AlertDispatcher(
                        shards: storage.shards, relay: parts.events, interval: .milliseconds(200), logger: logger),
                    "alert dispatcher"
                ),
                (parts.notifier, "notifier"),
                (
                    GroupReconciler(
                        shards: storage.shards, membership: parts.membership, peers: parts.peers,
                        authenticator: parts.authenticator, interval: settings.reconcileInterval), "group reconciler"
                ),
                (parts.decommission, "decommission"),
                (StorageFailureWatch(failures: parts.storageFailures, logger: logger), "fail-stop watch"),
            ]
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { service, name in
                    .init(
                        service: service, successTerminationBehavior: .gracefullyShutdownGroup,
                        failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: name)
                },
                logger: logger))

        logger.info(
            "serving",
            metadata: [
                "client": "\(clientAddress)", "cluster": "\(parts.membership.address)", "peer": "\(peerAddress)",
                "node": "\(storage.nodeID)", "data": "\(settings.dataDirectory)", "nng": "\(nngVersion)",
            ])
        onReady(
            ReadyInfo(
                client: clientAddress, cluster: parts.membership.address, peer: peerAddress, nodeID: storage.nodeID))
        serving.set()
        let logger = self.logger
        try await withGracefulShutdownHandler {
            try await group.run()
        } onGracefulShutdown: {
            logger.info("shutting down")
        }
    }
}

/// Set once, when the node reports that it serves; read by `/readyz`.
final class ServingFlag: Sendable {
    private let flag = Atomic(false)
    var value: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

extension NodeService {
    /// `HOST:PORT` of `--http-listen`.
    static func hostAndPort(_ listen: String) throws(NodeStartFailure) -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
            (0...65_535).contains(port), colon != listen.startIndex
        else {
            throw NodeStartFailure(reason: "--http-listen \(listen): expected HOST:PORT such as 127.0.0.1:7480, or off")
        }
        return (String(listen[..<colon]), port)
    }
}

/// The node stopped itself because storage failed (a restart recovers what is durable).
public struct NodeFailure: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { "storage failure: \(reason); restart the node to recover what is durable" }
}

/// The node could not start with the settings it was given.
public struct NodeStartFailure: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
