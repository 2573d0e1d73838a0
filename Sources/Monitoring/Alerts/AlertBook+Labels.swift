/// Labels that join a window after it closed (docs/alerting.md, "Labels that come later"): the
/// window's realized figures change, so the rules that read them judge that window again, when it
/// is still the newest window its alert judged. An older window never moves an alert back.
extension AlertBook {
    /// Judges `window` (a whole-model result, its figures now with the labels joined since it
    /// closed) again by the rules that read realized performance; `nowMs` is the acceptance time
    /// of the label op.
    public mutating func rejudge(_ window: WindowResult, rules: [AlertRule], context: Context, nowMs: Int64) {
        guard !window.isOpen, window.key.segment == nil else { return }
        for rule in rules where rule.metric.readsLabels {
            let fingerprint = Self.fingerprint(model: context.model, series: window.key.series, rule: rule)
            guard var alert = alerts[fingerprint], alert.windowStartMs == window.startMs else {
                // Not judged at close (no figure to read then, as for a realized-only metric
                // without labels): this is the window's first judgement.
                judge(window, rules: [rule], context: context, nowMs: nowMs)
                continue
            }
            guard let (value, feature) = Self.read(rule, in: window, context: context) else { continue }
            // The history holds the windows before this one, then this one's value.
            let before = Array(alert.history.dropLast())
            let held = Self.holds(rule.condition, alert.value, history: before)
            let holds = Self.holds(rule.condition, value, history: before)
            alert.value = value
            alert.feature = feature
            if !alert.history.isEmpty { alert.history[alert.history.count - 1] = value }
            if holds && !held {
                hold(&alert, windowStartMs: window.startMs, forWindows: rule.forWindows, nowMs: nowMs)
            } else if held && !holds {
                settle(&alert, nowMs: nowMs)
            }
            alerts[fingerprint] = alert
        }
    }
}

extension AlertMetric {
    /// Whether labels joined later can change the metric of a closed window.
    public var readsLabels: Bool {
        switch self {
        case .performance(_, .best), .performance(_, .realized), .performanceDrop: true
        default: false
        }
    }
}
