import Monitoring
import Testing
import Wire

@testable import Actors

@Suite("what a spec makes of labelled rows")
struct ModelMonitorTests {
    @Test("binary at the spec's threshold (0.5 by default), multiclass over its classes only, regression")
    func performanceTaskFollowsTheSpec() {
        func task(_ build: (inout Infranaut_V1_ModelSpec) -> Void) -> PerformanceTask? {
            ModelMonitor.performanceTask(.with(build))
        }
        #expect(task { $0.task = .binaryClassification } == .binary(threshold: 0.5))
        #expect(
            task {
                $0.task = .binaryClassification
                $0.performance.threshold = 0.3
            } == .binary(threshold: 0.3))
        #expect(task { $0.task = .multiclassClassification } == nil)
        #expect(
            task {
                $0.task = .multiclassClassification
                $0.performance.classes = ["cat", "dog"]
            } == .multiclass(classes: ["cat", "dog"]))
        #expect(task { $0.task = .regression } == .regression)
        #expect(task { _ in } == nil)
    }
}

@Suite("which alert rules a spec gives")
struct AlertRulesOfSpecTests {
    @Test("stamped defaults replace the built-in ones; the spec still replaces and disables them by name")
    func stampedDefaults() {
        let builtIn = ModelMonitor.alertRules(.with { $0.name = "m" }).map(\.name)
        #expect(builtIn == AlertRule.defaults.map(\.name))
        let spec = Infranaut_V1_ModelSpec.with {
            $0.name = "m"
            $0.defaultsStamped = true
            $0.defaultAlerts = [
                .with {
                    $0.name = "team-drift"
                    $0.metric = "drift_share"
                    $0.condition = .above(0.2)
                },
                .with {
                    $0.name = "quiet"
                    $0.metric = "idle_windows"
                    $0.condition = .above(5)
                },
            ]
            $0.alerts = [
                .with {
                    $0.name = "mine"
                    $0.metric = "rows"
                    $0.condition = .below(10)
                },
                .with {
                    $0.name = "quiet"
                    $0.disabled = true
                },
            ]
        }
        let rules = ModelMonitor.alertRules(spec)
        #expect(rules.map(\.name) == ["mine", "team-drift"])
        #expect(rules[1].condition == .above(0.2) && rules[1].metric == .driftShare)
        // Stamped but empty: no defaults at all.
        #expect(ModelMonitor.alertRules(.with { $0.defaultsStamped = true }).isEmpty)
        // The built-in table as stamped reads back as the built-in rules.
        #expect(ModelMonitor.rules(ModelMonitor.builtInDefaults) == AlertRule.defaults)
    }
}

@Suite("traffic stopping: idle_windows judged by the tick ops")
struct IdleAlertTests {
    let t: Int64 = 1_764_518_400_000

    func spec(_ alerts: [Infranaut_V1_AlertRule] = []) -> Infranaut_V1_ModelSpec {
        .with {
            $0.name = "m"
            $0.features = [
                .with {
                    $0.name = "f0"
                    $0.type = .numeric
                }
            ]
            $0.window = .with { $0.sizeMs = 60_000 }
            $0.alerts = alerts
        }
    }

    func rows(at ms: Int64) -> Infranaut_V1_TelemetryBatch {
        .with {
            $0.modelID = "m"
            $0.rowCount = 3
            $0.eventTimeUnixMs = [ms, ms, ms]
            $0.columns = [
                .with {
                    $0.name = "f0"
                    $0.doubles = .with { $0.values = [1, 2, 3] }
                }
            ]
        }
    }

    func traffic(_ monitor: ModelMonitor) -> AlertBook.Alert? {
        monitor.alerts.alerts.values.first { $0.rule == "traffic-stopped" }
    }

    @Test("the default fires past two windows without rows, at a tick due then, and rows resolve it")
    func firesAndResolves() {
        var monitor = ModelMonitor(spec: spec())
        _ = monitor.add(rows(at: t), mismatchRows: [], processingTimeMs: t)
        // The idle close of the open window comes first; it judges one window of quiet: no alert.
        #expect(monitor.tickDueAtMs == t + 60_000)
        monitor.tickOp(nowMs: t + 60_000)
        #expect(traffic(monitor)?.state == .inactive)
        #expect(monitor.tickDueAtMs == t + 120_001 && !monitor.isDue(nowMs: t + 120_000))
        monitor.tickOp(nowMs: t + 120_001)
        let fired = traffic(monitor)
        #expect(fired?.state == .firing && fired?.windowStartMs == t && fired?.sinceMs == t)
        #expect(fired.map { abs($0.value - 120_001.0 / 60_000) < 1e-9 } == true)
        #expect(monitor.alerts.outbox.last?.alert.state == .firing)
        #expect(monitor.tickDueAtMs == nil, "firing: no more ticks until rows come")
        // Rows again: resolved at once, and the next quiet spell is due from them.
        _ = monitor.add(rows(at: t + 600_000), mismatchRows: [], processingTimeMs: t + 600_000)
        #expect(monitor.alerts.outbox.last?.alert.state == .resolved && traffic(monitor)?.state == .inactive)
        #expect(monitor.tickDueAtMs == t + 660_000)
    }

    @Test("a spec's own threshold moves the due time; a disabled default asks for no tick")
    func thresholdAndDisabled() {
        var monitor = ModelMonitor(
            spec: spec([
                .with {
                    $0.name = "traffic-stopped"
                    $0.metric = "idle_windows"
                    $0.condition = .above(0.5)
                    $0.severity = .critical
                }
            ]))
        _ = monitor.add(rows(at: t), mismatchRows: [], processingTimeMs: t)
        #expect(monitor.tickDueAtMs == t + 30_001)
        monitor.tickOp(nowMs: t + 30_001)
        #expect(traffic(monitor)?.state == .firing && traffic(monitor)?.severity == .critical)

        var quiet = ModelMonitor(
            spec: spec([
                .with {
                    $0.name = "traffic-stopped"
                    $0.disabled = true
                }
            ]))
        _ = quiet.add(rows(at: t), mismatchRows: [], processingTimeMs: t)
        quiet.tickOp(nowMs: t + 60_000)
        #expect(quiet.tickDueAtMs == nil && traffic(quiet) == nil)
    }
}
