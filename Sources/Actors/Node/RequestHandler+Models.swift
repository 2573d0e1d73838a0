import Cluster
import Foundation
import Wire

/// The requests about one model's data: served by the shard that holds the model, on its
/// primary (a node that is not the primary forwards them there).
extension RequestHandler {
    func serveIngest(
        _ ingest: Infranaut_V1_IngestRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        do throws(WireError) {
            try ingest.validate(settings.limits)
        } catch {
            return .with {
                $0.ingest = .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) }
            }
        }
        let shardID = router.shardID(for: ingest.batch.modelID)
        if let relayed = await forwardIfRemote(
            request, bytes: bytes, model: ingest.batch.modelID, shard: shardID, deadline: deadline)
        {
            return relayed
        }
        guard membership.seesMajority else {
            return .with {
                $0.ingest = .with {
                    $0.status = Infranaut_V1_Status(
                        code: .unavailable,
                        message:
                            "this node cannot see a majority of the cluster's members (it may be on the minority side of a partition); it refuses writes until it does; retry, or send to another node"
                    )
                }
            }
        }
        // Back-pressure: an ingest that outlives its deadline keeps its batch in memory until it
        // is durable, so bound the bytes of ingests in progress and shed load above that.
        let size = bytes.count
        guard inFlight.admit(size, limit: settings.maxInFlightIngestBytes) else {
            return .with {
                $0.ingest = .with {
                    $0.status = .resourceExhausted(
                        "the node is overloaded (\(settings.maxInFlightIngestBytes >> 20) MiB of batches in progress); retry with the same idempotency key",
                        retryAfter: .milliseconds(250))
                }
            }
        }
        let shard = router.shard(shardID)
        let inFlight = self.inFlight
        let outcome = await withDeadline(deadline.remaining) {
            let answer = await shard.ingestAtLeader(ingest, deadline: deadline.instant)
            inFlight.release(size)
            return answer
        }
        switch outcome {
        case .done(let response)?:
            if response.status.code == .deadlineExceeded { expiredRequests.add(1, ordering: .relaxed) }
            return .with { $0.ingest = response }
        case .notLeader(let leader)?:
            // Leadership moved while the request waited here (a transfer, an election): the new
            // leader serves it (the batch was proposed nowhere, or the key makes it apply once).
            if let relayed = await forward(
                request, bytes: bytes, model: ingest.batch.modelID, to: leader, deadline: deadline)
            {
                return relayed
            }
            return .with {
                $0.ingest = .with {
                    $0.status = Infranaut_V1_Status(
                        code: .unavailable,
                        message:
                            "model \(ingest.batch.modelID)'s shard has no leader this node can reach (an election is running, or a majority of its replicas is out of reach); retry"
                    )
                }
            }
        case nil:
            return .with {
                $0.ingest = .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message:
                            "the batch was not applied within its deadline (\(deadline.budget)); it may still be; retry with the same idempotency key"
                    )
                }
            }
        }
    }

    func serveStatus(
        _ status: Infranaut_V1_StatusRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        guard !status.modelID.isEmpty else {
            return .with {
                $0.status = .with {
                    $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "status.model_id is empty")
                }
            }
        }
        let shardID = router.shardID(for: status.modelID)
        if let relayed = await forwardIfRemote(
            request, bytes: bytes, model: status.modelID, shard: shardID, deadline: deadline)
        {
            return relayed
        }
        let shard = router.shard(shardID)
        // Reads get the same deadline as writes: a shard busy electing must not hold a reader (and
        // its context) without end.
        let answer = await withDeadline(deadline.remaining) {
            () -> ShardActor.AtLeader<Infranaut_V1_StatusResponse> in
            switch await shard.readIndex() {
            case .notLeader(let leader): return .notLeader(leader)
            case .done(false): return .done(.with { $0.status = self.takingOver(status.modelID) })
            case .done(true): break
            }
            guard let page = await shard.status(status) else {
                return .done(
                    .with {
                        $0.status = Infranaut_V1_Status(
                            code: .notFound, message: "model \"\(status.modelID)\" has no telemetry in this cluster")
                    })
            }
            return .done(page)
        }
        if case .notLeader(let leader)? = answer,
            let relayed = await forward(request, bytes: bytes, model: status.modelID, to: leader, deadline: deadline)
        {
            return relayed
        }
        return .with {
            $0.status =
                answer.map { outcome in
                    if case .done(let page) = outcome { return page }
                    return .with { $0.status = self.takingOver(status.modelID) }
                }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message: "the status was not read within its deadline (\(deadline.budget)); retry")
                }
        }
    }

    func serveReceipts(
        _ receipts: Infranaut_V1_ReceiptsRequest, request: Infranaut_V1_Request, bytes: [UInt8],
        deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        do throws(WireError) {
            try receipts.validate(settings.limits)
        } catch {
            return .with {
                $0.receipts = .with { $0.status = Infranaut_V1_Status(code: error.code, message: error.message) }
            }
        }
        let shardID = router.shardID(for: receipts.modelID)
        if !receipts.local,
            let relayed = await forwardIfRemote(
                request, bytes: bytes, model: receipts.modelID, shard: shardID, deadline: deadline)
        {
            return relayed
        }
        let shard = router.shard(shardID)
        let answer = await withDeadline(deadline.remaining) {
            () -> ShardActor.AtLeader<Infranaut_V1_ReceiptsResponse> in
            if !receipts.local {
                switch await shard.readIndex() {
                case .notLeader(let leader): return .notLeader(leader)
                case .done(false): return .done(.with { $0.status = self.takingOver(receipts.modelID) })
                case .done(true): break
                }
            }
            return .done(await shard.receipts(model: receipts.modelID, keys: receipts.idempotencyKeys))
        }
        if case .notLeader(let leader)? = answer,
            let relayed = await forward(request, bytes: bytes, model: receipts.modelID, to: leader, deadline: deadline)
        {
            return relayed
        }
        return .with {
            $0.receipts =
                answer.map { outcome in
                    if case .done(let found) = outcome { return found }
                    return .with { $0.status = self.takingOver(receipts.modelID) }
                }
                ?? .with {
                    $0.status = Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message: "the receipts were not read within its deadline (\(deadline.budget)); retry")
                }
        }
    }
}
