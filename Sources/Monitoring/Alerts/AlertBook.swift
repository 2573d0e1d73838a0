/// One model's alerts (docs/alerting.md): for each rule and series (version and segment) the
/// lifecycle `pending → firing → resolved`, moved only by judging closed windows in the order
/// the model's op log closes them. A pure value: every replica that applies the same ops holds
/// the same book, and the shard checkpoints it with the model, so a failover neither forgets a
/// firing alert nor fires it twice.
public struct AlertBook: Sendable, Hashable {
    public enum State: UInt8, Sendable, Hashable {
        /// Judged, and the condition does not hold (kept for the metric's history).
        case inactive = 0
        /// The condition holds, for fewer consecutive windows than the rule's `for`.
        case pending = 1
        case firing = 2
        /// No longer pending or firing (only in ``AlertBook/resolved``).
        case resolved = 3
    }

    public struct Alert: Sendable, Hashable {
        /// 16 hex digits of a stable hash of model, version, segment, rule and the rule's labels.
        public var fingerprint: String
        public var rule: String
        public var series: SeriesKey
        public var state: State
        public var severity: AlertSeverity
        /// Consecutive windows the condition held in, up to the newest judged.
        public var consecutive: Int
        /// Start of the first window of that run (of the last run, once resolved).
        public var sinceMs: Int64
        /// The newest window judged, the metric in it and the feature it was read from.
        public var windowStartMs: Int64
        public var windowEndMs: Int64
        public var value: Double
        public var feature: String
        /// When the state last changed: the acceptance time of the op that changed it.
        public var changedMs: Int64
        /// Changes so far (each of pending, firing, resolved counts one).
        public var sequence: UInt64
        /// Whether it fired in its current (or, resolved, its last) run.
        public var fired: Bool
        /// The metric in the windows judged before the newest, oldest first (at most
        /// ``AlertCondition/keptHistory``).
        public var history: [Double]
    }

    /// Per fingerprint: every alert judged at least once and not dropped.
    public internal(set) var alerts: [String: Alert] = [:]
    /// The newest resolved alerts, newest last (at most ``maxResolved``).
    public internal(set) var resolved: [Alert] = []

    /// A change of an alert's state, numbered in the model's order of changes, kept until the
    /// shard knows every coordinator has it (``delivered(through:)``).
    public struct Change: Sendable, Hashable {
        public var number: UInt64
        /// The alert as it was right after the change.
        public var alert: Alert
    }

    /// Changes not yet delivered to the coordinators, oldest first (at most ``maxOutbox``).
    public internal(set) var outbox: [Change] = []
    /// The number the next change gets (numbers start at 1).
    public internal(set) var nextChange: UInt64 = 1
    /// Changes dropped undelivered because the outbox was full.
    public internal(set) var droppedChanges: UInt64 = 0

    public static let maxOutbox = 10_000

    public static let maxResolved = 100
    /// Alerts kept per model; beyond it the inactive ones judged longest ago go first.
    public static let maxAlerts = 10_000

    public init() {}

    /// Pending and firing alerts, by fingerprint.
    public var active: [Alert] {
        alerts.values.filter { $0.state == .pending || $0.state == .firing }.sorted { $0.fingerprint < $1.fingerprint }
    }

    /// What a rule reads besides the window: the labelled reference's score histogram and the
    /// binary threshold, for `performance_drop`.
    public struct Context: Sendable {
        public var model: String
        public var labelledReference: ScoreHistogram?
        public var threshold: Double?

        public init(model: String, labelledReference: ScoreHistogram? = nil, threshold: Double? = nil) {
            self.model = model
            self.labelledReference = labelledReference
            self.threshold = threshold
        }
    }

    /// Judges a closed window by every rule that applies to it; `nowMs` is the acceptance time of
    /// the op that closed it. A window older than one already judged for an alert leaves that
    /// alert alone (a late close does not move the lifecycle back).
    public mutating func judge(_ window: WindowResult, rules: [AlertRule], context: Context, nowMs: Int64) {
        guard !window.isOpen else { return }
        let isSegment = window.key.segment != nil
        for rule in rules where !isSegment || rule.perSegment {
            guard let (value, feature) = Self.read(rule, in: window, context: context) else { continue }
            let fingerprint = Self.fingerprint(model: context.model, series: window.key.series, rule: rule)
            var alert =
                alerts[fingerprint]
                ?? Alert(
                    fingerprint: fingerprint, rule: rule.name, series: window.key.series, state: .inactive,
                    severity: rule.severity, consecutive: 0, sinceMs: window.startMs, windowStartMs: .min,
                    windowEndMs: .min, value: value, feature: feature, changedMs: nowMs, sequence: 0, fired: false,
                    history: [])
            guard window.startMs > alert.windowStartMs else { continue }
            let holds = Self.holds(rule.condition, value, history: alert.history)
            alert.severity = rule.severity
            alert.windowStartMs = window.startMs
            alert.windowEndMs = window.endMs
            alert.value = value
            alert.feature = feature
            alert.history.append(value)
            if alert.history.count > AlertCondition.keptHistory {
                alert.history.removeFirst(alert.history.count - AlertCondition.keptHistory)
            }
            if holds {
                hold(&alert, windowStartMs: window.startMs, forWindows: rule.forWindows, nowMs: nowMs)
            } else {
                settle(&alert, nowMs: nowMs)
            }
            alerts[fingerprint] = alert
        }
        trim()
    }

    /// The condition holds in one more window (starting at `windowStartMs`): pending, or firing
    /// once it held in `forWindows` consecutive ones.
    mutating func hold(_ alert: inout Alert, windowStartMs: Int64, forWindows: Int, nowMs: Int64) {
        alert.consecutive += 1
        if alert.consecutive == 1 { alert.sinceMs = windowStartMs }
        let next: State = alert.consecutive >= forWindows ? .firing : .pending
        guard next != alert.state else { return }
        if alert.state == .inactive { alert.fired = false }
        if next == .firing { alert.fired = true }
        change(&alert, to: next, nowMs: nowMs)
    }

    /// The condition does not hold: a pending or firing alert is resolved, and stays inactive.
    mutating func settle(_ alert: inout Alert, nowMs: Int64) {
        alert.consecutive = 0
        guard alert.state != .inactive else { return }
        change(&alert, to: .resolved, nowMs: nowMs)
        remember(alert)
        alert.state = .inactive
    }

    /// Resolves the active alerts of rules the model no longer has, and forgets the inactive ones
    /// (a spec change removed or renamed the rule).
    public mutating func keep(rules: [AlertRule], nowMs: Int64) {
        let names = Set(rules.map(\.name))
        for (fingerprint, var alert) in alerts where !names.contains(alert.rule) {
            if alert.state != .inactive {
                change(&alert, to: .resolved, nowMs: nowMs)
                remember(alert)
            }
            alerts[fingerprint] = nil
        }
    }

    mutating func change(_ alert: inout Alert, to state: State, nowMs: Int64) {
        alert.state = state
        alert.changedMs = nowMs
        alert.sequence &+= 1
        outbox.append(Change(number: nextChange, alert: alert))
        nextChange &+= 1
        if outbox.count > Self.maxOutbox {
            droppedChanges &+= UInt64(outbox.count - Self.maxOutbox)
            outbox.removeFirst(outbox.count - Self.maxOutbox)
        }
    }

    /// Forgets the changes numbered up to `number`: every coordinator has them.
    public mutating func delivered(through number: UInt64) {
        outbox.removeAll { $0.number <= number }
    }

    private mutating func remember(_ alert: Alert) {
        resolved.append(alert)
        if resolved.count > Self.maxResolved { resolved.removeFirst(resolved.count - Self.maxResolved) }
    }

    mutating func trim() {
        guard alerts.count > Self.maxAlerts else { return }
        let idle = alerts.values.filter { $0.state == .inactive }
            .sorted { ($0.windowStartMs, $0.fingerprint) < ($1.windowStartMs, $1.fingerprint) }
        for alert in idle.prefix(alerts.count - Self.maxAlerts) { alerts[alert.fingerprint] = nil }
    }

    /// Stable across processes and versions: model, version, segment, rule name and the rule's
    /// labels, hashed.
    public static func fingerprint(model: String, series: SeriesKey, rule: AlertRule) -> String {
        var text = "\(model)\u{0}\(series.version)\u{0}"
        if let segment = series.segment {
            text += segment.column + "\u{0}"
            switch segment.value {
            case .value(let v): text += "v:" + v
            case .missing: text += "missing"
            case .other: text += "other"
            }
        }
        text += "\u{0}\(rule.name)"
        for label in rule.labels { text += "\u{0}\(label.key)=\(label.value)" }
        let hex = String(stableHash64(text), radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: - Reading and judging

    /// The rule's metric in `window`, and the feature it was read from (empty for a window-wide
    /// metric); nil when the window cannot say (no reference to compare with, no labels and no
    /// estimate, a feature it lacks).
    static func read(_ rule: AlertRule, in window: WindowResult, context: Context) -> (Double, String)? {
        if rule.metric.isPerFeature {
            var worst: (Double, String)?
            for feature in window.features where rule.feature == nil || rule.feature == feature.name {
                guard let value = featureValue(rule.metric, feature), value.isFinite else { continue }
                if worst == nil || value > worst!.0 { worst = (value, feature.name) }
            }
            return worst
        }
        let compared = window.features.contains { $0.score != nil }
        switch rule.metric {
        case .driftShare: return compared ? (window.driftShare, "") : nil
        case .datasetDrift: return compared ? (window.datasetDrift ? 1 : 0, "") : nil
        case .rows: return (Double(window.rows), "")
        case .lateRows: return (Double(window.lateRows), "")
        case .performance(let name, let source):
            guard let p = window.performance else { return nil }
            let realized = p.labelledRows > 0 ? p.metrics.first { $0.name == name }?.value : nil
            let estimated = p.estimated.first { $0.name == name }?.value
            let value: Double? =
                switch source {
                case .best: realized ?? estimated
                case .realized: realized
                case .estimated: estimated
                }
            return value.map { ($0, "") }
        case .performanceDrop:
            let estimator = context.labelledReference.flatMap { reference in
                context.threshold.flatMap { PerformanceEstimator(reference: reference, threshold: $0) }
            }
            guard let headline = RootCause.performance(window, estimator: estimator),
                let reference = headline.reference, let margin = headline.margin, margin > 0, margin.isFinite
            else { return nil }
            // In sampling errors below the reference (the margin is three of them).
            return ((reference - headline.value) / (margin / PerformanceEstimator.bandWidth), headline.metric)
        default: return nil
        }
    }

    private static func featureValue(_ metric: AlertMetric, _ f: FeatureResult) -> Double? {
        switch metric {
        case .featureDrift: f.score == nil ? nil : (f.drift ? 1 : 0)
        case .featureDriftScore: f.score == nil ? nil : RootCause.severity(f)
        case .missingRate: f.missingRate
        case .missingRateChange: f.missingRateChange
        case .outOfRangeShare: f.outsideSpecRangeShare ?? f.outsideReferenceRangeShare
        case .newCategories: f.newCategories.map(Double.init)
        default: nil
        }
    }

    static func holds(_ condition: AlertCondition, _ value: Double, history: [Double]) -> Bool {
        switch condition {
        case .above(let t): return value > t
        case .below(let t): return value < t
        case .anomaly(let t):
            guard history.count >= AlertCondition.minimumHistory,
                let score = RobustAnomaly.score(value, history: history)
            else { return false }
            return Swift.abs(score) >= t
        case .changePoint(let delta):
            guard history.count >= AlertCondition.minimumHistory, delta > 0, delta < 1 else { return false }
            // ADWIN's bound holds for values in [0, 1]: the series is scaled by its own range. The
            // condition holds while the newest change lies among the last `recentChange` windows.
            let all = history + [value]
            guard let low = all.min(), let high = all.max(), high > low else { return false }
            var adwin = ADWIN(delta: delta, clock: 1, minSubwindowLength: 3)
            var newest: Int?
            for (i, x) in all.enumerated() where adwin.add((x - low) / (high - low)) { newest = i }
            return newest.map { $0 >= all.count - AlertCondition.recentChange } ?? false
        }
    }
}
