import Foundation
public import Wire

extension ShardActor {
    /// One model's alerts (`request.model_id`). Call after ``readIndex()`` confirmed leadership.
    public func alerts(of request: Infranaut_V1_AlertsRequest) -> Infranaut_V1_AlertsResponse {
        let held: ModelState
        switch heldForRead(request.modelID) {
        case .success(let found): held = found
        case .failure(let refusal): return .with { $0.status = refusal.status }
        }
        return .with {
            $0.status = .ok
            $0.alerts =
                held.monitor?.alertInfos(state: request.state, includeResolved: request.includeResolved) ?? []
        }
    }

    /// Every model's alerts in this shard, parked models' included (their books are kept with the
    /// park: only applying an op changes a book, and that loads the model).
    public func allAlerts(_ request: Infranaut_V1_AlertsRequest) -> [Infranaut_V1_AlertInfo] {
        models.alertInfos(state: request.state, includeResolved: request.includeResolved)
    }
}

extension ShardActor {
    /// The oldest alert changes the coordinators may not have yet, when this replica leads.
    public func undeliveredAlertChanges(limit: Int) -> [(model: String, number: UInt64, info: Infranaut_V1_AlertInfo)] {
        guard state == .serving, raft?.role == .leader else { return [] }
        return models.undeliveredAlertChanges(limit: limit)
    }

    /// Proposes that every coordinator has `model`'s alert changes up to `through`; true once
    /// the op is applied here (false: not leading any more, or the log did not take it).
    public func proposeAlertsDelivered(model: String, through: UInt64) async -> Bool {
        guard state == .serving, raft?.role == .leader else { return false }
        let op = Infranaut_V1_StoredOp.with {
            $0.alertsDelivered = .with {
                $0.modelID = model
                $0.through = through
            }
            $0.acceptedUnixMs = Int64(Date().timeIntervalSince1970 * 1000)
        }
        guard let command = try? encode(op) else { return false }
        return await propose(command, op: op) != nil
    }
}
