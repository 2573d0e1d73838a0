import Testing

@testable import Monitoring

/// `AlertBook.judge` on hand-made window results: the lifecycle, `for`, late windows, the history
/// conditions, the checkpoint form and the fingerprint.
@Suite struct AlertBookTests {
    let hour: Int64 = 3_600_000

    func window(_ index: Int, driftShare: Double, segment: Segment? = nil, missing: Double = 0) -> WindowResult {
        var r = WindowResult(
            window: WindowSnapshot(
                key: WindowKey(startMs: Int64(index) * hour, series: SeriesKey(version: "v1", segment: segment)),
                endMs: Int64(index + 1) * hour, isOpen: false, rows: 100, columns: []))
        var f = FeatureResult(name: "f0", type: .numeric)
        f.method = .wasserstein
        f.score = driftShare
        f.threshold = 0.1
        f.drift = driftShare > 0.5
        f.missingRate = missing
        f.missingRateChange = missing
        var g = FeatureResult(name: "f1", type: .numeric)
        g.method = .wasserstein
        g.score = 0.01
        g.threshold = 0.1
        g.missingRate = missing / 2
        g.missingRateChange = missing / 2
        r.features = [f, g]
        r.driftShare = driftShare
        r.datasetDrift = driftShare >= 0.5
        return r
    }

    let context = AlertBook.Context(model: "fraud")

    @Test func pendingThenFiringThenResolvedWithFor() {
        let rule = AlertRule(name: "drift", metric: .driftShare, condition: .above(0.1), forWindows: 2)
        var book = AlertBook()
        book.judge(window(0, driftShare: 0.05), rules: [rule], context: context, nowMs: 10)
        #expect(book.active.isEmpty && book.alerts.count == 1)
        book.judge(window(1, driftShare: 0.3), rules: [rule], context: context, nowMs: 11)
        #expect(book.active.map(\.state) == [.pending])
        #expect(book.active[0].sinceMs == hour && book.active[0].sequence == 1 && book.active[0].changedMs == 11)
        book.judge(window(2, driftShare: 0.4), rules: [rule], context: context, nowMs: 12)
        #expect(book.active.map(\.state) == [.firing])
        #expect(book.active[0].sinceMs == hour && book.active[0].sequence == 2 && book.active[0].fired)
        #expect(book.active[0].value == 0.4 && book.active[0].windowStartMs == 2 * hour)
        // Still bad: firing, nothing changes but the figures.
        book.judge(window(3, driftShare: 0.5), rules: [rule], context: context, nowMs: 13)
        #expect(book.active[0].sequence == 2 && book.active[0].changedMs == 12 && book.active[0].consecutive == 3)
        // A late close of an older window does not move it.
        book.judge(window(1, driftShare: 0.0), rules: [rule], context: context, nowMs: 14)
        #expect(book.active.map(\.state) == [.firing] && book.active[0].windowStartMs == 3 * hour)
        // Clean: resolved, remembered, inactive.
        book.judge(window(4, driftShare: 0.0), rules: [rule], context: context, nowMs: 15)
        #expect(book.active.isEmpty)
        #expect(book.resolved.map(\.sequence) == [3] && book.resolved[0].fired && book.resolved[0].changedMs == 15)
        #expect(book.resolved[0].state == .resolved)
        // Each change waits in the outbox, numbered, until the coordinators have it.
        #expect(book.outbox.map(\.number) == [1, 2, 3])
        #expect(book.outbox.map(\.alert.state) == [.pending, .firing, .resolved])
        book.delivered(through: 2)
        #expect(book.outbox.map(\.number) == [3] && book.nextChange == 4)
    }

    @Test func aPendingAlertThatClearsResolvesWithoutHavingFired() {
        let rule = AlertRule(name: "drift", metric: .driftShare, condition: .above(0.1), forWindows: 3)
        var book = AlertBook()
        book.judge(window(0, driftShare: 0.3), rules: [rule], context: context, nowMs: 1)
        book.judge(window(1, driftShare: 0.0), rules: [rule], context: context, nowMs: 2)
        #expect(book.active.isEmpty && book.resolved.count == 1 && !book.resolved[0].fired)
    }

    @Test func anyFeatureTakesTheWorstAndANamedFeatureOnlyItself() {
        let any = AlertRule(name: "missing", metric: .missingRate, condition: .above(0.2))
        let named = AlertRule(name: "missing-f1", metric: .missingRate, feature: "f1", condition: .above(0.2))
        var book = AlertBook()
        book.judge(window(0, driftShare: 0, missing: 0.3), rules: [any, named], context: context, nowMs: 1)
        #expect(book.active.map(\.rule) == ["missing"] && book.active[0].feature == "f0")
        #expect(book.alerts.values.first { $0.rule == "missing-f1" }?.value == 0.15)
    }

    @Test func segmentsAreJudgedOnlyByPerSegmentRules() {
        let whole = AlertRule(name: "drift", metric: .driftShare, condition: .above(0.1))
        let split = AlertRule(name: "drift-split", metric: .driftShare, condition: .above(0.1), perSegment: true)
        var book = AlertBook()
        let segment = Segment(column: "region", value: .value("eu"))
        book.judge(window(0, driftShare: 0.9, segment: segment), rules: [whole, split], context: context, nowMs: 1)
        #expect(book.active.map(\.rule) == ["drift-split"] && book.active[0].series.segment == segment)
    }

    @Test func anomalyNeedsHistoryAndFiresOnAJump() {
        let rule = AlertRule(name: "jump", metric: .driftShare, condition: .anomaly(3.5))
        var book = AlertBook()
        for i in 0..<AlertCondition.minimumHistory {
            book.judge(window(i, driftShare: 0.1 + 0.01 * Double(i % 3)), rules: [rule], context: context, nowMs: 1)
        }
        #expect(book.active.isEmpty)
        book.judge(window(8, driftShare: 0.6), rules: [rule], context: context, nowMs: 2)
        #expect(book.active.map(\.state) == [.firing])
    }

    @Test func changePointFiresWhenTheSeriesShifts() {
        let rule = AlertRule(name: "shift", metric: .driftShare, condition: .changePoint(0.05))
        var book = AlertBook()
        var fired: [Int] = []
        var random = SplitMix64(seed: 3)
        for i in 0..<60 {
            let value = (i < 30 ? 0.1 : 0.5) + 0.1 * random.nextUnit()
            book.judge(window(i, driftShare: value), rules: [rule], context: context, nowMs: Int64(i))
            if book.active.first?.state == .firing { fired.append(i) }
        }
        // ADWIN's bound is conservative on a few dozen points: found some windows after the shift
        // at 30, never before it, and the alert holds for the following windows, not one.
        #expect(fired.first.map { (30..<50).contains($0) } == true, "\(fired)")
        #expect(fired.count >= AlertCondition.recentChange && fired.count < 30, "\(fired)")
    }

    @Test func theCheckpointFormRoundTrips() throws {
        let rules = [
            AlertRule(name: "drift", metric: .driftShare, condition: .above(0.1), perSegment: true),
            AlertRule(name: "missing", metric: .missingRate, condition: .above(0.2)),
        ]
        var book = AlertBook()
        for i in 0..<5 {
            book.judge(
                window(
                    i, driftShare: i % 2 == 0 ? 0.4 : 0, segment: i == 3 ? Segment(column: "r", value: .other) : nil),
                rules: rules, context: context, nowMs: Int64(i))
        }
        #expect(!book.resolved.isEmpty && !book.alerts.isEmpty)
        let copy = try AlertBook(serialized: book.serialized())
        #expect(copy == book)
        var bytes = book.serialized()
        bytes.removeLast()
        #expect(throws: ProfileDecodingError.self) { try AlertBook(serialized: bytes) }
    }

    @Test func theFingerprintIsStableAndNamesModelSeriesRuleAndLabels() {
        let rule = AlertRule(name: "drift", metric: .driftShare, condition: .above(0.1), labels: ["team": "risk"])
        let series = SeriesKey(version: "v1", segment: Segment(column: "region", value: .value("eu")))
        let fingerprint = AlertBook.fingerprint(model: "fraud", series: series, rule: rule)
        // The same across processes and builds (stored, and the key receivers deduplicate on):
        // FNV-1a and the MurmurHash3 finalizer over "fraud␀v1␀region␀v:eu␀drift␀team=risk",
        // computed apart in Python.
        #expect(fingerprint == "1486d810feaf4090")
        #expect(fingerprint.count == 16 && fingerprint.allSatisfy(\.isHexDigit))
        var other = rule
        other.labels = [("team", "ops")]
        #expect(AlertBook.fingerprint(model: "fraud", series: series, rule: other) != fingerprint)
        #expect(AlertBook.fingerprint(model: "fraud2", series: series, rule: rule) != fingerprint)
        #expect(AlertBook.fingerprint(model: "fraud", series: SeriesKey(version: "v1"), rule: rule) != fingerprint)
    }

    @Test func defaultsApplyUnlessReplacedOrDisabled() {
        let mine = AlertRule(name: "dataset-drift", metric: .driftShare, condition: .above(0.3))
        let rules = AlertRule.effective([mine], disabled: ["missing-values-rise"])
        #expect(rules.map(\.name) == ["dataset-drift", "performance-drop", "traffic-stopped"])
        #expect(rules[0] == mine)
        #expect(AlertMetric(name: "estimated_roc_auc") == .performance("roc_auc", .estimated))
        #expect(AlertMetric(name: "roc_auc")?.name == "roc_auc" && AlertMetric(name: "nope") == nil)
        #expect(AlertMetric.names.allSatisfy { AlertMetric(name: $0)?.name == $0 })
    }

    /// Window `index` with an estimated accuracy and, when given, a realized one from labels.
    func scored(_ index: Int, estimated: Double, realized: Double? = nil) -> WindowResult {
        var r = window(index, driftShare: 0)
        var p = WindowPerformance(
            metrics: realized.map { [("accuracy", $0)] } ?? [], labelledRows: realized == nil ? 0 : 50)
        p.estimated = [EstimatedMetric(name: "accuracy", value: estimated, samplingError: 0.01)]
        r.performance = p
        return r
    }

    @Test func labelsJoinedLaterJudgeTheNewestWindowAgain() {
        let best = AlertRule(name: "acc", metric: .performance("accuracy", .best), condition: .below(0.8))
        let realized = AlertRule(
            name: "real-acc", metric: .performance("accuracy", .realized), condition: .below(0.8))
        let drift = AlertRule(name: "drift", metric: .driftShare, condition: .above(0.5))
        let rules = [best, realized, drift]
        var book = AlertBook()
        // At close: only the estimate, which is fine; the realized-only rule has nothing to read.
        book.judge(scored(0, estimated: 0.9), rules: rules, context: context, nowMs: 10)
        #expect(book.active.isEmpty && book.alerts.count == 2)
        // Labels come: accuracy 0.5. Both performance rules fire on that window; drift is untouched.
        book.rejudge(scored(0, estimated: 0.9, realized: 0.5), rules: rules, context: context, nowMs: 20)
        #expect(Set(book.active.map(\.rule)) == ["acc", "real-acc"])
        #expect(book.active.allSatisfy { $0.state == .firing && $0.value == 0.5 && $0.changedMs == 20 })
        #expect(book.alerts.values.first { $0.rule == "acc" }?.history == [0.5])
        // More labels, no other verdict: no change.
        let changes = book.outbox.count
        book.rejudge(scored(0, estimated: 0.9, realized: 0.55), rules: rules, context: context, nowMs: 30)
        #expect(book.outbox.count == changes && book.active.first?.value == 0.55)
        // A newer window was judged by the estimate (0.7, still firing): labels for the older one
        // move that alert no more. The realized-only alert had nothing to read in the newer
        // window, so the older one is still its newest, and the labels resolve it.
        book.judge(scored(1, estimated: 0.7), rules: rules, context: context, nowMs: 40)
        let acc = book.alerts.values.first { $0.rule == "acc" }
        book.rejudge(scored(0, estimated: 0.9, realized: 0.95), rules: rules, context: context, nowMs: 50)
        #expect(book.alerts.values.first { $0.rule == "acc" } == acc)
        #expect(book.active.map(\.rule) == ["acc"] && book.outbox.last?.alert.rule == "real-acc")
        // Labels for the newest show it fine after all: both resolve.
        book.rejudge(scored(1, estimated: 0.7, realized: 0.9), rules: rules, context: context, nowMs: 60)
        #expect(book.active.isEmpty && book.outbox.suffix(2).allSatisfy { $0.alert.state == .resolved })
    }

    @Test func idleRulesFireOnlyOnTimeAndResolveWhenRowsCome() {
        let rule = AlertRule(name: "quiet", metric: .idleWindows, condition: .above(3))
        var book = AlertBook()
        // A closed window does not judge it.
        book.judge(window(0, driftShare: 0), rules: [rule], context: .init(model: "m"), nowMs: 10)
        #expect(book.alerts.isEmpty)
        #expect(book.idleDueMs(lastDataMs: 1_000, windowMs: 100, rules: [rule], model: "m") == 1_301)
        book.judgeIdle(lastDataMs: 1_000, nowMs: 1_300, windowMs: 100, rules: [rule], model: "m")
        #expect(book.active.isEmpty, "exactly three windows is not above three")
        book.judgeIdle(lastDataMs: 1_000, nowMs: 1_301, windowMs: 100, rules: [rule], model: "m")
        let fired = book.active.first
        #expect(fired?.state == .firing && fired?.sequence == 1 && fired?.fired == true)
        #expect(fired?.fingerprint == AlertBook.fingerprint(model: "m", series: SeriesKey(version: ""), rule: rule))
        // Judged again while firing: no second change.
        book.judgeIdle(lastDataMs: 1_000, nowMs: 5_000, windowMs: 100, rules: [rule], model: "m")
        #expect(book.outbox.count == 1 && book.active.first?.value == 40)
        #expect(book.idleDueMs(lastDataMs: 1_000, windowMs: 100, rules: [rule], model: "m") == nil)
        book.trafficResumed(nowMs: 6_000, rules: [rule], model: "m")
        #expect(book.active.isEmpty && book.outbox.last?.alert.state == .resolved && book.outbox.count == 2)
        #expect(book.resolved.last?.changedMs == 6_000)
    }
}
