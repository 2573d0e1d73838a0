public import Cluster
public import Storage
public import Wire

/// Everything `infranaut start` configures. Defaults suit a single node on a laptop.
public struct NodeSettings: Sendable {
    /// Where RocksDB keeps the node's data. Created when missing.
    public var dataDirectory: String
    /// The client endpoint (nng REQ/REP over TCP). Port 0 picks a free port; the node logs and
    /// prints the address it bound.
    public var clientListen = "tcp://127.0.0.1:7400"
    /// The operators' HTTP listener (`/healthz`, `/readyz`, `/metrics`; docs/operations.md) as
    /// `HOST:PORT` (port 0 picks a free port), or nil for none. Default `127.0.0.1:7480`.
    public var httpListen: String? = "127.0.0.1:7480"
    /// The peer endpoint (nng REQ/REP, sealed frames only): replication, snapshots, hand-off, event
    /// delivery, forwarded requests and `leave`. Port 0 picks a free port. Default port 7402.
    public var peerListen = "tcp://127.0.0.1:7402"
    /// The cluster secret every peer frame is sealed with (docs/security.md). Required.
    public var secret: ClusterSecret?
    /// Shards of the node's data set. Fixed when the data directory is created; a different value on
    /// a later start is ignored with a warning. Default 1,024 (``PlacementSettings``).
    public var shardCount = PlacementSettings().shardCount
    /// Largest client request accepted, in bytes; bigger ones are answered with TOO_LARGE (up to
    /// 1 MiB over the limit; beyond that nng drops the connection). A 1,000 × 1,000 numeric batch
    /// is about 8 MiB. Default 16 MiB.
    public var maxRequestBytes = 16 << 20
    /// Largest peer frame, in bytes (a whole-shard snapshot travels in one). Default 80 MiB.
    public var maxPeerFrameBytes = 80 << 20
    /// Connections the client listener keeps at once; more are closed as they arrive. With
    /// `maxRequestBytes` this bounds what partial frames can pin: about connections × (limit +
    /// 1 MiB). Default 1,024.
    public var maxClientConnections = 1_024
    /// Connections the peer listener keeps at once (a peer uses one; admin commands one each).
    /// Default 64.
    public var maxPeerConnections = 64
    /// Of those, connections that have not yet sent a frame proving the secret; at either limit a
    /// new connection replaces the oldest of them, so strangers cannot lock peers out, and their
    /// partial frames pin at most this many × `maxPeerFrameBytes`. Default 8.
    public var maxUnprovenPeerConnections = 8
    /// How long one request may take before the node answers DEADLINE_EXCEEDED. Default 30 s.
    public var requestTimeout: Duration = .seconds(30)
    /// How long a request forwarded toward a shard's leader may take before the client is told to
    /// retry. A leader that was just killed is replaced within one to two Raft election timeouts;
    /// until then a forward to it can only end by this timeout. Default 2 s.
    public var forwardTimeout: Duration = .seconds(2)
    /// How often this node checks that the groups it leads have the replicas the placement wants
    /// (it also checks whenever the membership view changes). Default 250 ms.
    public var reconcileInterval: Duration = .milliseconds(250)
    /// Bytes of ingest requests that may be in progress at once; beyond it the node answers a
    /// retryable RESOURCE_EXHAUSTED instead of queueing more. Default 256 MiB.
    public var maxInFlightIngestBytes = 256 << 20
    /// Client requests served concurrently (nng contexts of the client listener). Default 256.
    public var concurrency = 256
    /// Peer requests served concurrently (contexts of the peer listener, never shared with
    /// clients, so Raft traffic cannot queue behind client requests that wait on it). Default 256.
    public var peerConcurrency = 256
    /// Requests this node forwards to other nodes' primaries at once; more wait up to
    /// `forwardQueueWait`, then get RESOURCE_EXHAUSTED. Default 64.
    public var maxForwardsInFlight = 64
    /// Forwarded requests this node serves for other nodes at once; more get RESOURCE_EXHAUSTED,
    /// so forwards can never take every peer context from replication. Default 128.
    public var maxForwardedServed = 128
    /// Cluster-wide model listings (`list_models`, which asks every member) this node gathers at
    /// once; 16 more wait up to 1 s, the rest get RESOURCE_EXHAUSTED. A burst of listings would
    /// otherwise multiply into one peer call per member each. Default 2.
    public var maxListingsInFlight = 2
    /// How long a request may wait for a forwarding slot. Default 1 s.
    public var forwardQueueWait: Duration = .seconds(1)
    /// How often every shard with new entries writes a checkpoint (it also does every
    /// `shard.checkpointEveryEntries` entries), after which its log before it can go. Default 10 s.
    public var checkpointInterval: Duration = .seconds(10)
    /// How long shutdown waits for requests in flight. Default 5 s.
    public var shutdownGrace: Duration = .seconds(5)
    public var compression: Compression = .lz4
    public var shard = ShardSettings()
    public var limits = IngestLimits()
    /// Cluster membership. An empty node id means: the id stored in the data dir, or a new one.
    public var cluster = ClusterSettings(nodeID: "")

    public init(dataDirectory: String) {
        self.dataDirectory = dataDirectory
    }
}
