/// Rules on `idle_windows` (docs/alerting.md, "Traffic stopping"): a model without rows has no
/// window to judge, so these are judged by time instead. A tick op judges them when one is due,
/// and rows arriving resolve them. Both happen while ops are applied, so every replica holds the
/// same alerts, as for the window rules.
extension AlertBook {
    /// Model-wide: rows of every version count.
    static let idleSeries = SeriesKey(version: "")

    /// Judges the `idle_windows` rules at `nowMs` (a tick op's time), the model's last rows having
    /// come at `lastDataMs`: the value is the time between, in windows of `windowMs`. The alert's
    /// window is that gap. An alert fires at the first judgement that holds (`for` is 1).
    public mutating func judgeIdle(lastDataMs: Int64, nowMs: Int64, windowMs: Int64, rules: [AlertRule], model: String)
    {
        let value = Double(max(0, nowMs &- lastDataMs)) / Double(max(1, windowMs))
        for rule in rules where rule.metric == .idleWindows {
            let fingerprint = Self.fingerprint(model: model, series: Self.idleSeries, rule: rule)
            var alert =
                alerts[fingerprint]
                ?? Alert(
                    fingerprint: fingerprint, rule: rule.name, series: Self.idleSeries, state: .inactive,
                    severity: rule.severity, consecutive: 0, sinceMs: lastDataMs, windowStartMs: lastDataMs,
                    windowEndMs: nowMs, value: value, feature: "", changedMs: nowMs, sequence: 0, fired: false,
                    history: [])
            alert.severity = rule.severity
            alert.windowStartMs = lastDataMs
            alert.windowEndMs = nowMs
            alert.value = value
            if Self.holds(rule.condition, value, history: []) {
                alert.consecutive = 1
                if alert.state != .firing {
                    alert.sinceMs = lastDataMs
                    alert.fired = true
                    change(&alert, to: .firing, nowMs: nowMs)
                }
            } else {
                settle(&alert, nowMs: nowMs)
            }
            alerts[fingerprint] = alert
        }
        trim()
    }

    /// Rows came at `nowMs`: the firing `idle_windows` alerts resolve.
    public mutating func trafficResumed(nowMs: Int64, rules: [AlertRule], model: String) {
        for rule in rules where rule.metric == .idleWindows {
            let fingerprint = Self.fingerprint(model: model, series: Self.idleSeries, rule: rule)
            guard var alert = alerts[fingerprint], alert.state != .inactive else { continue }
            alert.windowEndMs = nowMs
            alert.value = 0
            settle(&alert, nowMs: nowMs)
            alerts[fingerprint] = alert
        }
    }

    /// When a tick next has an `idle_windows` rule to judge: the first moment one that is not
    /// firing would hold, after rows last came at `lastDataMs`; nil when none waits.
    public func idleDueMs(lastDataMs: Int64?, windowMs: Int64, rules: [AlertRule], model: String) -> Int64? {
        guard let lastDataMs else { return nil }
        var due: Int64?
        for rule in rules where rule.metric == .idleWindows {
            guard case .above(let threshold) = rule.condition, threshold.isFinite, threshold >= 0 else { continue }
            let fingerprint = Self.fingerprint(model: model, series: Self.idleSeries, rule: rule)
            if alerts[fingerprint]?.state == .firing { continue }
            let after = threshold * Double(windowMs)
            guard after < 1e15 else { continue }
            let at = lastDataMs &+ Int64(after.rounded(.down)) &+ 1
            due = min(due ?? at, at)
        }
        return due
    }
}
