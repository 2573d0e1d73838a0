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
        let infos = held.monitor?.alertInfos(state: request.state, includeResolved: request.includeResolved) ?? []
        return .with {
            $0.status = .ok
            $0.alerts = withHints(infos)
        }
    }

    /// Every model's alerts in this shard, parked models' included (their books are kept with the
    /// park: only applying an op changes a book, and that loads the model).
    public func allAlerts(_ request: Infranaut_V1_AlertsRequest) -> [Infranaut_V1_AlertInfo] {
        withHints(models.alertInfos(state: request.state, includeResolved: request.includeResolved))
    }

    /// How many alerts of this shard fire (for the metrics; no hints read).
    func firingAlertCount() -> Int {
        models.alertInfos(state: .firing, includeResolved: false).count
    }

    /// Windows whose hints one listing reads at most (each is a scan of one window start); the
    /// alerts of further windows are listed without hints.
    static let maxHintWindows = 32

    /// `infos` with the root-cause hints of their windows added to the pending and firing ones.
    func withHints(_ infos: [Infranaut_V1_AlertInfo]) -> [Infranaut_V1_AlertInfo] {
        var read: [String: Infranaut_V1_AlertHints?] = [:]
        let deadline = ContinuousClock.now + .seconds(2)
        return infos.map { info in
            guard info.state != .resolved else { return info }
            let window = "\(info.modelID)\u{0}\(info.version)\u{0}\(info.windowStartUnixMs)"
            if read[window] == nil {
                guard read.count < Self.maxHintWindows, ContinuousClock.now < deadline else { return info }
                read[window] = .some(hints(of: info, deadline: deadline))
            }
            var with = info
            if let hints = read[window] ?? nil { with.hints = hints }
            return with
        }
    }

    /// The root-cause hints of the window `info` last judged (docs/alerting.md, "Hints"): the
    /// performance figure, the flagged features and the segments that fail more often than the
    /// window, at most 3 of each; nil when the window has none or cannot be read. Call after
    /// ``readIndex()`` confirmed leadership, or as the leader.
    public func hints(of info: Infranaut_V1_AlertInfo, deadline: ContinuousClock.Instant = .now + .seconds(2))
        -> Infranaut_V1_AlertHints?
    {
        guard info.windowEndUnixMs > info.windowStartUnixMs else { return nil }
        let answer = explain(
            .with {
                $0.modelID = info.modelID
                $0.version = info.version
                $0.windowUnixMs = info.windowStartUnixMs
                $0.top = 3
            }, deadline: deadline)
        guard answer.status.code == .ok else { return nil }
        let hints = Infranaut_V1_AlertHints.with {
            if answer.hasPerformance { $0.performance = answer.performance }
            $0.features = answer.features.filter { $0.drift || $0.attributionShifted }
            $0.segments = answer.segments.filter { $0.lift > 1 }
            if !$0.segments.isEmpty { $0.segmentBasis = answer.segmentBasis }
        }
        return hints.hasPerformance || !hints.features.isEmpty || !hints.segments.isEmpty ? hints : nil
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
