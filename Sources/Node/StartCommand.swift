import Actors
import ArgumentParser
import Cluster
import Foundation
import Logging
import ServiceLifecycle
import Specs
import Storage
import Synchronization
import Wire

#if canImport(Glibc)
    import Glibc
#endif

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Run a node: a client endpoint and shards that keep model state in RocksDB.",
        discussion: """
            The node acknowledges a batch only after it is durable in RocksDB's write-ahead log, and
            restores every acknowledged batch after a restart (including kill -9). SIGTERM or SIGINT
            stops it gracefully: requests in flight finish, shards finish their queued writes, the database closes.
            """
    )

    @Option(name: .customLong("data-dir"), help: "Directory for the node's RocksDB data (created if missing).")
    var dataDirectory = "./infranaut-data"

    @Option(name: .customLong("client-listen"), help: "nng address for clients; port 0 picks a free port.")
    var clientListen = "tcp://127.0.0.1:7400"

    @Option(
        name: .customLong("node-id"),
        help: "Node id in the cluster (default: the one stored in the data dir, or a new one).")
    var nodeID: String?

    @Option(
        name: .customLong("cluster-listen"),
        help: "nng address for peer (membership) traffic; port 0 picks a free port.")
    var clusterListen = "tcp://127.0.0.1:7401"

    @Option(
        name: .customLong("peer-listen"),
        help: "nng address for requests between nodes (sealed with the cluster secret); port 0 picks a free port.")
    var peerListen = "tcp://127.0.0.1:7402"

    @Option(
        name: .customLong("cluster-secret-file"),
        help:
            "File holding the cluster secret (at least 16 bytes). Default: $INFRANAUT_CLUSTER_SECRET, else <data-dir>/cluster-secret, which a node without seeds creates."
    )
    var clusterSecretFile: String?

    @Option(
        name: .customLong("seed"),
        help: "Cluster address of a node to join through (repeatable). Without seeds the node forms a new cluster.")
    var seeds: [String] = []

    @Option(help: "Comma-separated roles: worker, coordinator.")
    var roles = "worker,coordinator"

    @Option(
        help: "Shards of the data set; fixed when the data dir is created, and the same on every node of a cluster.")
    var shards = PlacementSettings().shardCount

    @Option(
        name: .customLong("replication-factor"),
        help: "Replicas of every shard (every node of a cluster must use the same value).")
    var replicationFactor = 3

    @Option(
        name: .customLong("replica-load-factor"),
        help:
            "No node holds more than this times the mean number of replicas (0: unbounded rendezvous placement); fixed when the data dir is created, and the same on every node."
    )
    var replicaLoadFactor = PlacementSettings().replicaLoadFactor ?? 0

    @Option(
        name: .customLong("max-request-bytes"),
        help: "Largest client request accepted (bytes); bigger ones get TOO_LARGE.")
    var maxRequestBytes = 16 << 20

    @Option(
        name: .customLong("max-client-connections"),
        help: "Client connections kept at once; more are closed as they arrive.")
    var maxClientConnections = 1_024

    @Option(name: .customLong("request-timeout-ms"), help: "Deadline for handling one request.")
    var requestTimeoutMs = 30_000

    @Option(
        name: .customLong("checkpoint-interval-ms"),
        help: "Interval between background shard checkpoints (the Raft log before one can go).")
    var checkpointIntervalMs = 10_000

    @Option(
        name: .customLong("log-retained-entries"),
        help:
            "Raft log entries a shard's leader keeps behind its checkpoint for followers that lack them, so that a follower a little behind catches up from the log instead of a snapshot (entries every follower holds are not kept; a follower keeps none)."
    )
    var logRetainedEntries = 128

    @Option(
        name: .customLong("park-idle-models-after-s"),
        help:
            "Seconds a model may go without traffic or reads before its shard keeps it only on disk (loaded again by its next batch, read or window deadline); 0 keeps every model in memory."
    )
    var parkIdleModelsAfterSeconds = 60

    @Option(name: .customLong("idempotency-window-s"), help: "How long a retried idempotency key is recognised.")
    var idempotencyWindowSeconds = 600

    @Option(
        name: .customLong("max-features-per-model"),
        help: "Features one model may hold; a batch that would add more is refused.")
    var maxFeaturesPerModel = 1_000

    @Option(
        name: .customLong("max-models"),
        help: "Models this node's shards may hold together; the first batch of one more is refused.")
    var maxModels = 10_000

    @Option(
        name: .customLong("http-listen"),
        help:
            "HOST:PORT of the operators' HTTP listener (GET /healthz, /readyz, /metrics; port 0 picks a free one), or off. It serves only reads; keep it on loopback or a network only probes and Prometheus reach."
    )
    var httpListen = "127.0.0.1:7480"

    @Option(
        name: .customLong("alert-defaults"),
        help:
            "A file with a kind: AlertDefaults document: the default alert rules the models whose specs this node accepts inherit, instead of the built-in ones. Give every node the same file (docs/alerting.md, \"Cluster defaults\").",
        completion: .file())
    var alertDefaults: String?

    @Option(
        help:
            "A YAML file of settings, one key per flag (data-dir: /var/lib/infranaut); INFRANAUT_* variables override it and flags override both (docs/operations.md, \"Configuration\"). infranaut config print shows the result.",
        completion: .file())
    var config: String?

    @Option(
        name: .customLong("log-format"),
        help: "Logs on stderr as readable lines (text) or one JSON object a line (json).")
    var logFormat = "text"

    @Option(help: "Block compression for RocksDB: none, snappy, lz4 or zstd.")
    var compression = "lz4"

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Flag(help: "Print the ready line as JSON.")
    var json = false

    func validate() throws {
        guard shards > 0 && shards <= 65_535 else { throw ValidationError("--shards must be between 1 and 65535") }
        guard replicationFactor >= 1 && replicationFactor <= 7 && replicationFactor % 2 == 1 else {
            throw ValidationError(
                "--replication-factor must be 1, 3, 5 or 7: a shard's group needs a majority of its replicas, so an even factor survives no more failures than the odd one below it (2 survives none, like 1)"
            )
        }
        guard replicaLoadFactor == 0 || (replicaLoadFactor >= 1 && replicaLoadFactor <= 10) else {
            throw ValidationError("--replica-load-factor must be 0 (unbounded) or between 1 and 10")
        }
        guard maxRequestBytes >= 1024 && maxRequestBytes <= 64 << 20 else {
            throw ValidationError("--max-request-bytes must be between 1024 and 67108864 (64 MiB)")
        }
        guard parkIdleModelsAfterSeconds >= 0 else {
            throw ValidationError("--park-idle-models-after-s must be 0 (keep every model in memory) or more")
        }
        guard maxClientConnections >= 1 else { throw ValidationError("--max-client-connections must be at least 1") }
        guard maxFeaturesPerModel >= 1, maxModels >= 1 else {
            throw ValidationError("--max-features-per-model and --max-models must be at least 1")
        }
        guard Compression(rawValue: compression) != nil else {
            throw ValidationError("--compression must be one of none, snappy, lz4, zstd")
        }
        for role in roles.split(separator: ",")
        where NodeRole(rawValue: role.trimmingCharacters(in: .whitespaces)) == nil {
            throw ValidationError("--roles: unknown role \(role); use worker, coordinator or both")
        }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel) is not a level")
        }
        guard requestTimeoutMs > 0, checkpointIntervalMs > 0, idempotencyWindowSeconds > 0 else {
            throw ValidationError("timeouts and intervals must be positive")
        }
    }

    func run() async throws {
        #if canImport(Glibc)
            // glibc gives every thread that allocates its own malloc arena; with nng's, RocksDB's and
            // Swift's threads all moving 100 KB batches that fragments into tens of idle megabytes.
            // Two arenas keep the node's resident memory close to what it actually holds.
            let arenaMax: Int32 = -8  // M_ARENA_MAX, from malloc.h
            _ = glibcMallopt(arenaMax, 2)
        #endif
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            if format == "json" {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "infranaut")
        logger.logLevel = level

        var settings = NodeSettings(dataDirectory: dataDirectory)
        settings.clientListen = clientListen
        settings.peerListen = peerListen
        settings.maxClientConnections = maxClientConnections
        do {
            settings.secret = try resolveSecret(logger: logger)
        } catch {
            throw CLIError("\(error)")
        }
        settings.shardCount = shards
        settings.maxRequestBytes = maxRequestBytes
        settings.requestTimeout = .milliseconds(requestTimeoutMs)
        settings.shard.idempotencyWindow = .seconds(idempotencyWindowSeconds)
        settings.shard.maxFeaturesPerModel = maxFeaturesPerModel
        settings.shard.maxModels = maxModels
        settings.httpListen = httpListen == "off" ? nil : httpListen
        if let alertDefaults { settings.shard.alertDefaults = try Self.readAlertDefaults(alertDefaults) }
        settings.compression = Compression(rawValue: compression) ?? .lz4
        settings.cluster.nodeID = nodeID ?? ""
        settings.cluster.listen = clusterListen
        settings.cluster.seeds = seeds
        settings.cluster.placement.replicationFactor = replicationFactor
        settings.checkpointInterval = .milliseconds(checkpointIntervalMs)
        settings.shard.logRetainedEntries = UInt64(max(0, logRetainedEntries))
        settings.shard.parkIdleModelsAfter =
            parkIdleModelsAfterSeconds > 0 ? .seconds(parkIdleModelsAfterSeconds) : nil
        settings.cluster.placement.replicaLoadFactor = replicaLoadFactor == 0 ? nil : replicaLoadFactor
        settings.cluster.roles = Set(
            roles.split(separator: ",").compactMap { NodeRole(rawValue: $0.trimmingCharacters(in: .whitespaces)) })

        let json = self.json
        let dataDirectory = self.dataDirectory
        // The ready line waits for the HTTP listener too, when there is one, so it names every
        // address the node bound.
        let announced = Mutex<(ready: NodeService.ReadyInfo?, http: String?)>((nil, nil))
        let wantsHTTP = settings.httpListen != nil
        @Sendable func announce() {
            guard
                let (ready, http) = announced.withLock({ state -> (NodeService.ReadyInfo, String?)? in
                    guard let ready = state.ready, !wantsHTTP || state.http != nil else { return nil }
                    state.ready = nil  // once
                    return (ready, state.http)
                })
            else { return }
            let line =
                json
                ? "{\"event\":\"serving\",\"client\":\"\(ready.client)\",\"cluster\":\"\(ready.cluster)\",\"peer\":\"\(ready.peer)\",\"http\":\"\(http ?? "")\",\"node_id\":\"\(ready.nodeID)\",\"data_dir\":\"\(dataDirectory)\",\"pid\":\(getpid())}\n"
                : "infranaut node \(ready.nodeID) serving on \(ready.client) (cluster \(ready.cluster), peer \(ready.peer), \(http.map { "http \($0), " } ?? "")data: \(dataDirectory), pid \(getpid()))\n"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        let node = NodeService(
            settings: settings, logger: logger,
            onReady: { ready in
                announced.withLock { $0.ready = ready }
                announce()
            },
            onHTTP: { address in
                announced.withLock { $0.http = address }
                announce()
            })
        let group = ServiceGroup(
            // The node also returns on its own after `infranaut leave` handed everything off.
            configuration: .init(
                services: [.init(service: node, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            throw CLIError("node stopped: \(error)")
        }
    }
}

extension StartCommand {
    /// The cluster secret, in this order: the file given, `INFRANAUT_CLUSTER_SECRET`, the data
    /// dir's `cluster-secret`. A node without seeds that has none creates the data dir's (mode
    /// 0600); a node with seeds must be given the cluster's.
    func resolveSecret(logger: Logger) throws -> ClusterSecret {
        if let given = try ClusterSecret.given(file: clusterSecretFile) { return given }
        let stored = dataDirectory + "/cluster-secret"
        if FileManager.default.fileExists(atPath: stored) { return try ClusterSecret(file: stored) }
        guard seeds.isEmpty else {
            throw CLIError(
                "joining a cluster through --seed needs the cluster's secret: pass --cluster-secret-file with a copy of the first node's <data-dir>/cluster-secret, or set INFRANAUT_CLUSTER_SECRET"
            )
        }
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try ClusterSecret.createFile(at: stored)
        logger.notice(
            "created a cluster secret; nodes that join this cluster need a copy (--cluster-secret-file)",
            metadata: ["file": "\(stored)"])
        return try ClusterSecret(file: stored)
    }
}

#if canImport(Glibc)
    /// glibc's `mallopt` (declared in malloc.h, which the Glibc module does not import).
    @_silgen_name("mallopt")
    private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

extension StartCommand {
    /// The rules of the one `kind: AlertDefaults` document in `path`; every problem is named with
    /// its line, and the node does not start.
    static func readAlertDefaults(_ path: String) throws -> [Infranaut_V1_AlertRule] {
        let (objects, problems) = SpecDocuments.read(try readSpecFile(path))
        guard problems.isEmpty else {
            let lines = problems.map { "\(path)\($0.line.map { ":\($0)" } ?? ""): \($0.path): \($0.message)" }
            throw CLIError("--alert-defaults: \(lines.joined(separator: "; "))")
        }
        let tables = objects.compactMap { object -> [Infranaut_V1_AlertRule]? in
            if case .alertDefaults(let rules) = object.body { return rules }
            return nil
        }
        guard tables.count == 1, objects.count == 1 else {
            throw CLIError("--alert-defaults: \(path) must hold exactly one kind: AlertDefaults document")
        }
        return tables[0]
    }
}
