import Storage
public import Wire

/// A leaving node's shards move to their new primaries (docs/replication.md, "leave").
extension ShardActor {
    /// For a node that leaves: as this shard's primary, first adopts the leaving node's copy when
    /// it is ahead of this one (it may be the only up-to-date copy, e.g. with replication factor 1),
    /// then brings every current follower up to what is applied here (snapshots as needed) and
    /// answers once they hold it, or after `timeout` with a retryable error. The target is fixed
    /// when the followers are first synced, so writes arriving meanwhile cannot keep it moving.
    public func handOff(_ request: Infranaut_V1_HandOffRequest, timeout: Duration) async -> Infranaut_V1_HandOffResponse
    {
        guard case .serving = state else {
            return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: unavailableMessage) }
        }
        let deadline = ContinuousClock.now + timeout
        var target: UInt64?
        while ContinuousClock.now < deadline {
            // Every pass awaits: the node may have begun shutting down since the last one, and a
            // stopped shard's writer no longer takes writes.
            guard case .serving = state else {
                return .with { $0.status = Infranaut_V1_Status(code: .unavailable, message: unavailableMessage) }
            }
            if link != nil, primary.writingTerm == nil, !(await establishTerm()) {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            if (request.lastTerm, request.applied) > (lastTerm, appliedSequence) {
                // Adopting would discard what this primary wrote in its own term: the histories
                // have split, and neither may simply replace the other.
                guard primary.writingTerm == nil || lastTerm < primary.writingTerm! else {
                    return .with {
                        $0.status = Infranaut_V1_Status(
                            code: .internal,
                            message:
                                "shard \(shard) was written here in term \(lastTerm) while the leaving node's copy is ahead; the histories have split"
                        )
                    }
                }
                guard let link, !request.fromAddress.isEmpty, await adopt(from: request.fromAddress, link: link),
                    (lastTerm, appliedSequence) >= (request.lastTerm, request.applied)
                else {
                    return .with {
                        $0.status = Infranaut_V1_Status(
                            code: .unavailable,
                            message: "shard \(shard) could not fetch the leaving node's newer copy; retry")
                    }
                }
                // The install dropped the term: claim again before syncing followers.
                continue
            }
            guard let link else {
                return .with {
                    $0.status = .ok
                    $0.applied = appliedSequence
                    $0.lastTerm = lastTerm
                }
            }
            guard let followers = await link.followers(shard) else {
                return .with {
                    $0.status = Infranaut_V1_Status(
                        code: .unavailable, message: "this node is not shard \(shard)'s primary in its view; retry")
                }
            }
            let goal = target ?? appliedSequence
            target = goal
            if followers.allSatisfy({ (primary.followerAcked[$0] ?? 0) >= goal }) {
                return .with {
                    $0.status = .ok
                    $0.applied = goal
                    $0.lastTerm = termAt(goal) ?? lastTerm
                    $0.followers = followers
                    $0.containsLeavingCopy = holdsOp(
                        at: request.applied, term: request.lastTerm, model: request.lastModel, key: request.lastKey)
                }
            }
            // While a pump or sweep runs, it does the same; the next pass checks again.
            _ = await asTheOnlyExchange {
                for follower in followers where (primary.followerAcked[follower] ?? 0) < goal {
                    await sync(follower, link: link)
                }
            }
            if !followers.allSatisfy({ (primary.followerAcked[$0] ?? 0) >= goal }) {
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        return .with {
            $0.status = Infranaut_V1_Status(
                code: .unavailable, message: "shard \(shard)'s followers did not catch up within \(timeout); retry")
        }
    }

    /// Whether this history holds the op another replica has at `sequence`: by its key when given
    /// (the same key applied at the same sequence), else by the term at that sequence; true when
    /// neither can be checked any more (older than the idempotency window and the term memory).
    func holdsOp(at sequence: UInt64, term: UInt64, model: String, key: String) -> Bool {
        if sequence == 0 { return true }
        if !key.isEmpty, let record = remembered[IdempotencyKey(model: model, key: key)] {
            return record.sequence == sequence
        }
        if let known = termAt(sequence) { return known == term && key.isEmpty }
        return key.isEmpty
    }

    /// The model and key of the op at `appliedSequence`, while it is remembered.
    public var lastOpKey: (model: String, key: String)? {
        guard appliedSequence > 0 else { return nil }
        return remembered.key(atSequence: appliedSequence).map { ($0.model, $0.key) }
    }

    /// For a node about to leave that holds the only copy of this shard (it is primary with no
    /// follower): installs its state on `address`, the shard's primary once it is gone, under its
    /// own term, before anyone can write there. True once `address` holds everything applied here.
    public func seed(_ address: String) async -> Bool {
        guard case .serving = state, let link else { return false }
        if primary.writingTerm == nil {
            guard await establishTerm() else { return false }
        }
        guard await asTheOnlyExchange({ await pushSnapshot(to: address, link: link) }) else { return false }
        return primary.followerAcked[address] == appliedSequence
    }
}
