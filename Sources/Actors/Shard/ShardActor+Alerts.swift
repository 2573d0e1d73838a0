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
