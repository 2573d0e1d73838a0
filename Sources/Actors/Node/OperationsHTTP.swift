import Cluster
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The node's HTTP listener for operators (docs/operations.md): `GET /healthz` (the process
/// answers), `GET /readyz` (recovered, joined and serving; 503 with the reason otherwise) and
/// `GET /metrics` (Prometheus text). It serves nothing else and reads only: it is meant for the
/// host's probes and a Prometheus scraper, bound to loopback by default.
struct OperationsHTTP {
    let host: String
    let port: Int
    let metrics: NodeMetrics
    let membership: MembershipService
    let shards: [ShardActor]
    let events: EventRelay
    let notifier: Notifier
    let handler: RequestHandler
    let storage: NodeStorage
    let dataDirectory: String
    /// Whether the node reported that it serves.
    let serving: @Sendable () -> Bool
    /// Whether the node was started with seeds, so that it must see another member to be joined.
    let joining: Bool
    let onBound: @Sendable (String) -> Void
    let logger: Logger

    /// Why the node is not ready, or nil when it is.
    func notReadyReason() async -> String? {
        guard serving() else { return "starting: recovery or listeners not done" }
        guard handler.servesClients else { return "leaving the cluster or shutting down" }
        let view = await membership.view
        if joining, !view.members.contains(where: { $0.id != view.myself.id && $0.status.isLive }) {
            return "not joined: no other member of the cluster is seen alive yet"
        }
        if !view.seesMajority { return "sees no majority of the cluster: writes would be refused" }
        return nil
    }

    /// Reads the gauges from the node's parts.
    func refreshGauges() async {
        let view = await membership.view
        for status in MemberStatus.allCases {
            metrics.gauge(
                "infranaut_members", Double(view.members.filter { $0.status == status }.count),
                labels: [("status", status.description)], help: "Members this node sees, by status.")
        }
        var leading = 0
        var following = 0
        var firing = 0
        var behind: UInt64 = 0
        var unapplied: UInt64 = 0
        var models: [(model: String, rows: UInt64, driftShare: Double?, firing: Int)] = []
        for shard in shards {
            let lag = await shard.replicationLag()
            unapplied += lag.unapplied
            switch await shard.leadership {
            case .here:
                leading += 1
                firing += await shard.firingAlertCount()
                behind = max(behind, lag.behind)
                models += await shard.modelGauges().map { ($0.model, $0.rows, $0.driftShare, $0.firing) }
            case .elsewhere: following += 1
            case .notAReplica: break
            }
        }
        metrics.setModels(models)
        metrics.gauge(
            "infranaut_replication_lag_entries", Double(behind),
            help: "Of the shards this node leads, the most log entries a follower lacks.")
        metrics.gauge(
            "infranaut_unapplied_entries", Double(unapplied),
            help: "Log entries committed on this node's replicas but not yet applied.")
        let wal = storage.writer.statistics
        metrics.advance(
            "infranaut_wal_groups_total", to: Int64(clamping: wal.groups), help: "Synced WAL writes (groups).")
        metrics.advance(
            "infranaut_wal_batches_total", to: Int64(clamping: wal.batches),
            help: "Batches written in those groups (batches / groups: the mean group size).")
        metrics.gauge(
            "infranaut_data_directory_bytes", Self.directoryBytes(dataDirectory),
            help: "Bytes of the node's data directory (RocksDB files).")
        var space = statvfs()
        if statvfs(dataDirectory, &space) == 0 {
            let block = Double(space.f_frsize)
            metrics.gauge(
                "infranaut_data_filesystem_free_bytes", Double(space.f_bavail) * block,
                help: "Bytes the data directory's filesystem has free (for the node's user).")
            metrics.gauge(
                "infranaut_data_filesystem_size_bytes", Double(space.f_blocks) * block,
                help: "Size of the data directory's filesystem.")
        }
        // Per column family: the SST files' bytes, and what compaction still has to rewrite.
        for name in ShardStore.families {
            guard let family = try? storage.database.columnFamily(name) else { continue }
            for (property, metric, help) in [
                (
                    "rocksdb.total-sst-files-size", "infranaut_rocksdb_sst_bytes",
                    "Bytes of a RocksDB column family's SST files."
                ),
                (
                    "rocksdb.estimate-pending-compaction-bytes", "infranaut_rocksdb_pending_compaction_bytes",
                    "RocksDB's estimate of bytes compaction still has to rewrite, per column family."
                ),
            ] {
                guard let text = try? storage.database.property(property, of: family), let value = Double(text)
                else { continue }
                metrics.gauge(metric, value, labels: [("family", name)], help: help)
            }
        }
        metrics.gauge(
            "infranaut_shards", Double(leading), labels: [("role", "leader")], help: "Shard replicas held, by role.")
        metrics.gauge(
            "infranaut_shards", Double(following), labels: [("role", "follower")], help: "Shard replicas held, by role."
        )
        metrics.gauge(
            "infranaut_alerts_firing", Double(firing), help: "Firing alerts of the shards this node leads.")
        metrics.gauge(
            "infranaut_events_outbox_pending", Double(await events.pendingCount),
            help: "Events published through this node that some coordinator has not acknowledged.")
        metrics.gauge(
            "infranaut_notifier_sending", await notifier.isSending ? 1 : 0,
            help: "1 while this coordinator is the one that sends notifications.")
        metrics.gauge(
            "infranaut_process_resident_memory_bytes", NodeMetrics.residentBytes(),
            help: "Resident memory of the node process.")
        metrics.gauge(
            "infranaut_ready", await notReadyReason() == nil ? 1 : 0, help: "1 while /readyz answers 200.")
    }

    func application() -> some Service {
        let router = Hummingbird.Router()
        router.get("healthz") { _, _ in "ok\n" }
        router.get("readyz") { _, _ -> Response in
            if let reason = await notReadyReason() {
                return Self.text(.serviceUnavailable, "not ready: \(reason)\n")
            }
            return Self.text(.ok, "ready\n")
        }
        router.get("metrics") { _, _ -> Response in
            await refreshGauges()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: metrics.text())))
        }
        let host = self.host
        let onBound = self.onBound
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in onBound("http://\(host):\(channel.localAddress?.port ?? 0)") },
            logger: logger)
    }

    /// The size of the files under `path`.
    static func directoryBytes(_ path: String) -> Double {
        guard let files = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0.0
        for case let name as String in files {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + name)
            if attributes?[.type] as? FileAttributeType == .typeRegular {
                total += Double((attributes?[.size] as? NSNumber)?.int64Value ?? 0)
            }
        }
        return total
    }

    static func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
