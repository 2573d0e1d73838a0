import Cluster
import Foundation
import Monitoring
import Specs
import Storage
public import Wire

/// Model specs: applied, deleted and read through the shard's log like telemetry, so every
/// replica holds the same spec at the same index and a failover neither loses nor repeats a change
/// (docs/models.md).
extension ShardActor {
    /// Checks `request.spec` and, unless it is a dry run or changes nothing, proposes it to the
    /// group and answers once it is applied. An invalid spec changes nothing and lists every problem.
    public func applySpecAtLeader(_ request: Infranaut_V1_ApplyModelRequest, deadline: ContinuousClock.Instant)
        async -> AtLeader<Infranaut_V1_ApplyModelResponse>
    {
        func answer(_ code: Infranaut_V1_StatusCode, _ message: String) -> AtLeader<Infranaut_V1_ApplyModelResponse> {
            .done(.with { $0.status = Infranaut_V1_Status(code: code, message: message) })
        }
        switch await leaderTurn(deadline: deadline, what: "apply") {
        case .refused(let code, let message): return answer(code, message)
        case .notLeader(let leader): return .notLeader(leader)
        case .ready: break
        }
        var limits = SpecLimits()
        limits.maxFeatures = settings.maxFeaturesPerModel
        limits.defaultRuleNames = Set(settings.alertDefaults?.map(\.name) ?? AlertRule.defaults.map(\.name))
        // The inherited defaults are the leader's to set, never a client's.
        var incoming = request.spec
        incoming.defaultAlerts = []
        incoming.defaultsStamped = false
        let problems = ModelSpecRules.problems(of: incoming, limits: limits)
        guard problems.isEmpty else {
            return .done(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message:
                            "the spec of model \"\(request.spec.name)\" has \(problems.count) problem\(problems.count == 1 ? "" : "s"); nothing was changed: "
                            + problems.map(\.description).joined(separator: "; "))
                    $0.problems = problems.map { problem in
                        .with {
                            $0.path = problem.path
                            $0.message = problem.message
                        }
                    }
                })
        }
        let model = incoming.name
        var spec = SpecRendering.normalized(incoming)
        // Always stamped, the built-in table too: replicas on different releases (a rolling
        // upgrade that changed the built-ins) then judge the same rules.
        spec.defaultAlerts = settings.alertDefaults ?? ModelMonitor.builtInDefaults
        spec.defaultsStamped = true
        let stampedBytes = (try? spec.serializedBytes() as [UInt8])?.count ?? Int.max
        guard stampedBytes <= limits.maxSpecBytes else {
            return answer(
                .invalidArgument,
                "the spec of model \"\(model)\" with this node's default alert rules is \(stampedBytes) bytes encoded; the limit is \(limits.maxSpecBytes); nothing was changed"
            )
        }
        let held: ModelState?
        do throws(ModelUnavailable) {
            held = try self.held(model)
        } catch {
            return answer(.unavailable, error.message)
        }
        let live = held.map { $0.purgeAfterUnixMs == 0 } ?? false
        if live, let applied = held?.spec, applied == spec {
            return .done(
                .with {
                    $0.status = .ok
                    $0.outcome = .unchanged
                    $0.generation = held?.generation ?? 0
                })
        }
        let outcome: Infranaut_V1_ApplyOutcome = held?.spec != nil && live ? .configured : .created
        if request.dryRun {
            return .done(
                .with {
                    $0.status = .ok
                    $0.outcome = outcome
                    $0.generation = (held?.generation ?? 0) + 1
                })
        }
        if !models.knows(model) {
            guard store.modelCount.reserve(limit: settings.maxModels) else {
                let refusal = settings.modelLimitError(model: model, current: store.modelCount.value)
                return answer(refusal.code, refusal.message)
            }
            models.project(model, models.projection(of: model))
        }
        let op = Infranaut_V1_StoredOp.with {
            $0.modelSpec = .with {
                $0.modelID = model
                $0.spec = spec
            }
            $0.acceptedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        }
        switch await proposeSpec(op) {
        case .spec(let generation, _)?:
            return .done(
                .with {
                    $0.status = .ok
                    $0.outcome = outcome
                    $0.generation = generation
                })
        case .failure(let message):
            return answer(.unavailable, message)
        default:
            return answer(
                .unavailable,
                "shard \(shard) lost its leader before the spec was known to be committed; it may still be; apply again"
            )
        }
    }

    /// Marks `request.name` deleted through the log: its state goes after the deleted-model
    /// retention unless a spec is applied again before. Deleting a deleted model answers its purge
    /// time again; an unknown model is NOT_FOUND.
    public func deleteModelAtLeader(_ request: Infranaut_V1_DeleteModelRequest, deadline: ContinuousClock.Instant)
        async -> AtLeader<Infranaut_V1_DeleteModelResponse>
    {
        func answer(_ code: Infranaut_V1_StatusCode, _ message: String) -> AtLeader<Infranaut_V1_DeleteModelResponse> {
            .done(.with { $0.status = Infranaut_V1_Status(code: code, message: message) })
        }
        switch await leaderTurn(deadline: deadline, what: "delete") {
        case .refused(let code, let message): return answer(code, message)
        case .notLeader(let leader): return .notLeader(leader)
        case .ready: break
        }
        let found: ModelState?
        do throws(ModelUnavailable) {
            found = try self.held(request.name)
        } catch {
            return answer(.unavailable, error.message)
        }
        guard let held = found else {
            return answer(.notFound, "model \"\(request.name)\" does not exist in this cluster")
        }
        if held.purgeAfterUnixMs != 0 {
            return .done(
                .with {
                    $0.status = .ok
                    $0.purgeAfterUnixMs = held.purgeAfterUnixMs
                })
        }
        let op = Infranaut_V1_StoredOp.with {
            $0.modelSpec = .with {
                $0.modelID = request.name
                $0.delete = true
                $0.purgeAfterMs = UInt64(settings.deletedModelRetention.components.seconds * 1000)
            }
            $0.acceptedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        }
        switch await proposeSpec(op) {
        case .spec(_, let purgeAfter)?:
            return .done(
                .with {
                    $0.status = .ok
                    $0.purgeAfterUnixMs = purgeAfter
                })
        case .failure(let message):
            return answer(.unavailable, message)
        default:
            return answer(
                .unavailable,
                "shard \(shard) lost its leader before the delete was known to be committed; it may still be; delete again"
            )
        }
    }

    private enum Turn {
        case ready
        case notLeader(NodeID?)
        case refused(Infranaut_V1_StatusCode, String)
    }

    /// Whether this replica may propose a spec change now: serving, leading (after any leadership
    /// transfer in progress), and within the request's deadline.
    private func leaderTurn(deadline: ContinuousClock.Instant, what: String) async -> Turn {
        guard state == .serving else { return .refused(.unavailable, unavailableMessage) }
        await awaitTransferEnd()
        guard state == .serving else { return .refused(.unavailable, unavailableMessage) }
        guard let current = raft, current.role == .leader else { return .notLeader(raft?.leader) }
        // The decision (created, configured, unchanged, the next generation) reads the applied
        // state: a leader elected a moment ago may not have applied its predecessor's committed
        // entries yet, and would call an applied spec new. A read barrier applies them first.
        switch await readIndex() {
        case .notLeader(let leader): return .notLeader(leader)
        case .done(false): return .refused(.unavailable, unavailableMessage)
        case .done(true): break
        }
        guard ContinuousClock.now < deadline else {
            return .refused(
                .deadlineExceeded, "the \(what) waited past its deadline; nothing was changed; \(what) again")
        }
        return .ready
    }

    private enum SpecProposal {
        case spec(generation: UInt64, purgeAfterUnixMs: Int64)
        case failure(String)
    }

    private func proposeSpec(_ op: Infranaut_V1_StoredOp) async -> SpecProposal? {
        let command: [UInt8]
        do throws(StorageError) {
            command = try encode(op)
        } catch {
            return .failure("the spec change could not be encoded (\(error)); nothing was changed")
        }
        guard case .spec(let generation, let purgeAfter)? = await propose(command, op: op) else { return nil }
        return .spec(generation: generation, purgeAfterUnixMs: purgeAfter)
    }

    /// `name`'s spec as applied, or inferred from its telemetry when none was; nil when the shard
    /// holds nothing of it. Call after ``readIndex()`` confirmed leadership.
    public func model(_ name: String) -> Infranaut_V1_GetModelResponse? {
        let found: ModelState?
        do throws(ModelUnavailable) {
            found = try self.held(name)
        } catch {
            return .with { $0.status = error.status }
        }
        guard let held = found else { return nil }
        return .with {
            $0.status = .ok
            if let spec = held.spec {
                $0.spec = spec
                $0.generation = held.generation
                $0.updatedUnixMs = held.specUpdatedUnixMs
            } else {
                $0.spec = Self.inferredSpec(of: held)
                $0.inferred = true
            }
            $0.purgeAfterUnixMs = held.purgeAfterUnixMs
        }
    }

    /// The models this shard holds, for `get models`.
    public func modelSummaries() -> [Infranaut_V1_ModelSummary] {
        models.summaries
    }

    /// What a spec for `held` would say from its telemetry alone: its features with their types,
    /// and the prediction and label columns its batches named.
    static func inferredSpec(of held: ModelState) -> Infranaut_V1_ModelSpec {
        .with { spec in
            spec.name = held.modelID
            spec.columns = .with {
                $0.prediction = held.predictionColumn
                $0.label = held.labelColumn
            }
            let roles: Set<String> = [held.predictionColumn, held.labelColumn]
            spec.features = held.featureOrder.filter { !roles.contains($0) }.compactMap { name in
                guard let feature = held.features[name] else { return nil }
                return .with {
                    $0.name = name
                    switch feature.type {
                    case .double: $0.type = .numeric
                    case .bool: $0.type = .boolean
                    default: $0.type = .categorical
                    }
                }
            }
        }
    }
}
