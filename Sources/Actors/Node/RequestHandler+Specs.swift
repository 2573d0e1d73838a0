import Cluster
import Foundation
import Wire

/// The requests about model specs (docs/models.md): served by the leader of the model's shard like
/// telemetry; `list_models` gathers every node's led shards.
extension RequestHandler {
    func serveApplyModel(
        _ apply: Infranaut_V1_ApplyModelRequest, request: Infranaut_V1_Request, bytes: [UInt8],
        deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        let name = apply.spec.name
        guard !name.isEmpty, name.utf8.count <= settings.limits.maxNameBytes else {
            return .with {
                $0.applyModel = .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message: "apply_model.spec.name must be 1 to \(settings.limits.maxNameBytes) bytes")
                    $0.problems = [
                        .with {
                            $0.path = "metadata.name"
                            $0.message = "1 to \(settings.limits.maxNameBytes) bytes"
                        }
                    ]
                }
            }
        }
        return await atLeader(
            request, bytes: bytes, model: name, deadline: deadline, what: "apply",
            wrap: { reply in .with { $0.applyModel = reply } },
            status: { status in .with { $0.status = status } },
            serve: { shard in await shard.applySpecAtLeader(apply, deadline: deadline.instant) })
    }

    func serveDeleteModel(
        _ delete: Infranaut_V1_DeleteModelRequest, request: Infranaut_V1_Request, bytes: [UInt8],
        deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        guard !delete.name.isEmpty else {
            return .with {
                $0.deleteModel = .with {
                    $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "delete_model.name is empty")
                }
            }
        }
        return await atLeader(
            request, bytes: bytes, model: delete.name, deadline: deadline, what: "delete",
            wrap: { reply in .with { $0.deleteModel = reply } },
            status: { status in .with { $0.status = status } },
            serve: { shard in await shard.deleteModelAtLeader(delete, deadline: deadline.instant) })
    }

    func serveGetModel(
        _ get: Infranaut_V1_GetModelRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        guard !get.name.isEmpty else {
            return .with {
                $0.getModel = .with {
                    $0.status = Infranaut_V1_Status(code: .invalidArgument, message: "get_model.name is empty")
                }
            }
        }
        return await atLeader(
            request, bytes: bytes, model: get.name, deadline: deadline, what: "read",
            wrap: { reply in .with { $0.getModel = reply } },
            status: { status in .with { $0.status = status } },
            serve: self.afterReadIndex(model: get.name, status: { status in .with { $0.status = status } }) { shard in
                await shard.model(get.name)
                    ?? .with {
                        $0.status = Infranaut_V1_Status(
                            code: .notFound, message: "model \"\(get.name)\" does not exist in this cluster")
                    }
            })
    }

    func serveWindows(
        _ windows: Infranaut_V1_WindowsRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        await modelRead(
            model: windows.modelID, problem: windows.modelID.isEmpty ? "windows.model_id is empty" : nil,
            request: request, bytes: bytes, deadline: deadline,
            wrap: { reply in .with { $0.windows = reply } },
            status: { status in .with { $0.status = status } }
        ) { shard in await shard.windows(windows, deadline: deadline.instant) }
    }

    func serveCompare(
        _ compare: Infranaut_V1_CompareRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        await modelRead(
            model: compare.modelID, problem: compare.problem, request: request, bytes: bytes, deadline: deadline,
            wrap: { reply in .with { $0.compare = reply } },
            status: { status in .with { $0.status = status } }
        ) { shard in await shard.compare(compare, deadline: deadline.instant) }
    }

    func serveExplain(
        _ explain: Infranaut_V1_ExplainRequest, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        await modelRead(
            model: explain.modelID, problem: explain.problem, request: request, bytes: bytes, deadline: deadline,
            wrap: { reply in .with { $0.explain = reply } },
            status: { status in .with { $0.status = status } }
        ) { shard in await shard.explain(explain, deadline: deadline.instant) }
    }

    /// A read of one model at its shard's leader after a read-index round, or the request's
    /// `problem` answered as an invalid argument without going anywhere.
    func modelRead<Reply: Sendable>(
        model: String, problem: String?, request: Infranaut_V1_Request, bytes: [UInt8], deadline: RequestDeadline,
        wrap: @escaping @Sendable (Reply) -> Infranaut_V1_Response,
        status: @escaping @Sendable (Infranaut_V1_Status) -> Reply,
        serve: @escaping @Sendable (ShardActor) async -> Reply
    ) async -> Infranaut_V1_Response {
        if let problem { return wrap(status(Infranaut_V1_Status(code: .invalidArgument, message: problem))) }
        return await atLeader(
            request, bytes: bytes, model: model, deadline: deadline, what: "read", wrap: wrap, status: status,
            serve: self.afterReadIndex(model: model, status: status, serve))
    }

    /// A read served by the shard's leader once a read-index round confirmed it still leads, so it
    /// never answers from state a newer leader has replaced.
    private func afterReadIndex<Reply: Sendable>(
        model: String, status: @escaping @Sendable (Infranaut_V1_Status) -> Reply,
        _ read: @escaping @Sendable (ShardActor) async -> Reply
    ) -> @Sendable (ShardActor) async -> ShardActor.AtLeader<Reply> {
        { shard in
            switch await shard.readIndex() {
            case .notLeader(let leader): return .notLeader(leader)
            case .done(false): return .done(status(self.takingOver(model)))
            case .done(true): return .done(await read(shard))
            }
        }
    }

    /// Serves a request at the leader of `model`'s shard: forwards it when another node leads,
    /// runs `serve` on the local replica otherwise (forwarding again when leadership moved
    /// meanwhile), within `deadline`.
    private func atLeader<Reply: Sendable>(
        _ request: Infranaut_V1_Request, bytes: [UInt8], model: String, deadline: RequestDeadline, what: String,
        wrap: (Reply) -> Infranaut_V1_Response, status: (Infranaut_V1_Status) -> Reply,
        serve: @escaping @Sendable (ShardActor) async -> ShardActor.AtLeader<Reply>
    ) async -> Infranaut_V1_Response {
        let shardID = router.shardID(for: model)
        if let relayed = await forwardIfRemote(request, bytes: bytes, model: model, shard: shardID, deadline: deadline)
        {
            return relayed
        }
        let shard = router.shard(shardID)
        let outcome = await withDeadline(deadline.remaining) { await serve(shard) }
        switch outcome {
        case .done(let reply)?:
            return wrap(reply)
        case .notLeader(let leader)?:
            if let relayed = await forward(request, bytes: bytes, model: model, to: leader, deadline: deadline) {
                return relayed
            }
            return wrap(status(takingOver(model)))
        case nil:
            return wrap(
                status(
                    Infranaut_V1_Status(
                        code: .deadlineExceeded,
                        message:
                            "the \(what) of model \(model) did not finish within its deadline (\(deadline.budget)); it may still; retry"
                    )))
        }
    }

    /// Every model of the cluster: this node's led shards, and (unless `local`) every other live
    /// member's, asked in parallel. Members that do not answer are named, not waited on past the
    /// deadline, and so are the shards no answer covered: a listing is either complete or says
    /// what it misses (a hung member that gossip already calls dead is not asked, but the shards
    /// it led are still named until another member leads them).
    func serveListModels(_ list: Infranaut_V1_ListModelsRequest, deadline: RequestDeadline) async
        -> Infranaut_V1_Response
    {
        if list.local {
            let (models, led) = await ledModels()
            return .with {
                $0.listModels = .with {
                    $0.status = .ok
                    $0.models = models.sorted { $0.name < $1.name }
                    $0.ledShards = led.sorted()
                }
            }
        }
        let asked = Infranaut_V1_Request.with {
            $0.version = 1
            $0.listModels = .with { $0.local = true }
        }
        guard
            let gathered = await gatherFromLeaders(
                asking: asked, deadline: deadline, what: "model lists", local: ledModels,
                part: { reply in
                    guard case .listModels(let found) = reply.body, found.status.code == .ok else { return nil }
                    return (found.models, found.ledShards)
                })
        else {
            return .with { $0.error = busyGathering("model lists") }
        }
        // A model is listed once even when two nodes both thought they led its shard a moment ago.
        var seen: Set<String> = []
        let unique = gathered.items.sorted { $0.name < $1.name }.filter { seen.insert($0.name).inserted }
        return .with {
            $0.listModels = .with {
                $0.status = .ok
                $0.models = unique
                $0.unreachable = gathered.unreachable
                $0.leaderlessShards = gathered.leaderless
            }
        }
    }

    func busyGathering(_ what: String) -> Infranaut_V1_Status {
        .resourceExhausted(
            "this node is gathering \(settings.maxListingsInFlight) \(what) from the cluster already; retry",
            retryAfter: .milliseconds(500))
    }

    /// Asks every other live member for the part of the shards it leads (`asking`, a request
    /// with `local` set) and adds this node's own part: the parts, the members that did not
    /// answer, and the shards no answering node led. Each gathering asks every member, so a burst
    /// waits here (briefly, in order) or gets nil (the caller answers that it is busy).
    func gatherFromLeaders<Item: Sendable>(
        asking: Infranaut_V1_Request, deadline: RequestDeadline, what: String,
        local: () async -> ([Item], Set<UInt32>),
        part: @escaping @Sendable (Infranaut_V1_Response) -> (items: [Item], led: [UInt32])?
    ) async -> (items: [Item], unreachable: [String], leaderless: [UInt32])? {
        guard await listings.enter(patience: min(.seconds(1), deadline.remaining)) else { return nil }
        defer { listings.leave() }
        var (items, led) = await local()
        var unreachable: [String] = []
        let others = await membership.view.members.filter {
            $0.id.rawValue != membership.nodeID && ($0.status == .alive || $0.status == .suspect)
                && !$0.peerAddress.isEmpty
        }
        let wait = min(settings.forwardTimeout, deadline.remaining)
        let peers = self.peers
        await withTaskGroup(of: (String, (items: [Item], led: [UInt32])?).self) { group in
            for member in others {
                group.addTask {
                    let reply = try? await peers.call(asking, to: member.peerAddress, timeout: wait)
                    return (member.id.rawValue, reply.flatMap(part))
                }
            }
            for await (member, found) in group {
                if let found {
                    items += found.items
                    led.formUnion(found.led)
                } else {
                    unreachable.append(member)
                }
            }
        }
        let leaderless = (0..<UInt32(router.shards.count)).filter { !led.contains($0) }
        return (items, unreachable.sorted(), leaderless)
    }

    /// The models of the shards this node leads, and those shards' numbers.
    private func ledModels() async -> ([Infranaut_V1_ModelSummary], Set<UInt32>) {
        var found: [Infranaut_V1_ModelSummary] = []
        var led: Set<UInt32> = []
        for (number, shard) in router.shards.enumerated() where await shard.leadership == .here {
            found += await shard.modelSummaries()
            led.insert(UInt32(number))
        }
        return (found, led)
    }
}
