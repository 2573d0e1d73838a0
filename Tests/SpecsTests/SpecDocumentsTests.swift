import Monitoring
import Specs
import Testing
import Wire

private let documentedExample = """
    apiVersion: infranaut.io/v1
    kind: Model
    metadata: {name: fraud-v1, labels: {team: payments}}
    spec:
      task: binary-classification
      columns: {id: request_id, timestamp: ts, prediction: score, label: is_fraud, version: model_version}
      features:
        - {name: amount, type: numeric, range: [0, 100000]}
        - {name: country, type: categorical}
      segments: [country]
      window: {size: 1h, lateness: 10m}
      reference: {from: upload}
      drift: {method: auto, threshold: 0.1, per_feature: {amount: {method: psi, threshold: 0.2}}}
      retention: {windows: 90d}
    """

@Suite("model spec files")
struct SpecDocumentsTests {
    @Test("the documented example reads into the spec it describes")
    func example() throws {
        let (objects, problems) = SpecDocuments.read(documentedExample)
        #expect(problems.isEmpty, "\(problems)")
        guard case .model(let spec)? = objects.first?.body else {
            Issue.record("no model read")
            return
        }
        #expect(spec.name == "fraud-v1" && spec.labels == ["team": "payments"])
        #expect(spec.task == .binaryClassification)
        #expect(spec.columns.id == "request_id" && spec.columns.version == "model_version")
        #expect(spec.features.map(\.name) == ["amount", "country"])
        #expect(spec.features[0].type == .numeric && spec.features[0].bounded && spec.features[0].max == 100_000)
        #expect(spec.features[1].type == .categorical && !spec.features[1].bounded)
        #expect(spec.segments == ["country"])
        #expect(spec.window.sizeMs == 3_600_000 && spec.window.latenessMs == 600_000)
        #expect(spec.reference.policy == .upload)
        #expect(spec.drift.method == "auto" && spec.drift.threshold == 0.1)
        #expect(spec.drift.perFeature["amount"]?.method == "psi" && spec.drift.perFeature["amount"]?.threshold == 0.2)
        #expect(spec.retention.windowsMs == 90 * 86_400_000)
    }

    @Test("every problem is listed with its path and line, and an invalid file yields nothing to apply")
    func problemsListed() {
        let yaml = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}
            spec:
              task: classification
              features:
                - {name: a, type: numeric}
                - {name: b, type: categorical, range: [0, 1]}
                - {name: a, type: numeric}
                - {name: c, type: nmeric}
              segments: [a, zz]
              window: {size: 0, lateness: soon}
              reference: {from: first-rows}
              drift: {method: ks, threshold: 2, per_feature: {nope: {method: psi}}}
              colour: blue
            """
        let (objects, problems) = SpecDocuments.read(yaml)
        #expect(objects.isEmpty)
        let byPath = Dictionary(grouping: problems, by: \.path)
        func expectProblem(_ path: String, line: Int, containing text: String) {
            let found = byPath[path] ?? []
            #expect(
                found.contains { $0.line == line && $0.message.contains(text) },
                "\(path): expected line \(line) and \"\(text)\"; got \(found)")
        }
        expectProblem("spec.task", line: 5, containing: "\"classification\" is not one of binary-classification")
        expectProblem("spec.features[1].range", line: 8, containing: "only numeric features have a range")
        expectProblem("spec.features[2].name", line: 9, containing: "declared twice")
        expectProblem(
            "spec.features[3].type", line: 10, containing: "\"nmeric\" is not one of numeric, categorical, boolean")
        expectProblem("spec.segments[0]", line: 11, containing: "numeric")
        expectProblem("spec.segments[1]", line: 11, containing: "not a declared feature")
        expectProblem("spec.window.size", line: 12, containing: "outside 1s to 31d")
        expectProblem("spec.window.lateness", line: 12, containing: "expected a duration")
        expectProblem("spec.reference.rows", line: 13, containing: "first-rows needs rows")
        expectProblem("spec.drift.threshold", line: 14, containing: "p-value below 1")
        expectProblem("spec.drift.per_feature.nope", line: 14, containing: "not a declared feature")
        expectProblem("spec.colour", line: 15, containing: "unknown field")
        #expect(problems.count == 12, "\(problems.map(\.description).joined(separator: "\n"))")
    }

    @Test("several documents: a problem in one keeps the whole file from applying; other kinds are named")
    func severalDocuments() {
        let two = documentedExample + "\n---\n" + "apiVersion: infranaut.io/v1\nkind: Model\nmetadata: {name: second}\n"
        let (objects, problems) = SpecDocuments.read(two)
        #expect(problems.isEmpty && objects.count == 2)
        let bad = documentedExample + "\n---\n" + "apiVersion: infranaut.io/v2\nkind: Modle\nmetadata: {name: x}\n"
        let (none, found) = SpecDocuments.read(bad)
        #expect(none.isEmpty)
        #expect(found.contains { $0.path == "apiVersion" && $0.message.hasPrefix("document 2: ") && $0.line == 16 })
        #expect(found.contains { $0.path == "kind" && $0.message.contains("\"Modle\" is not one of Model") })
        let broken = SpecDocuments.read("kind: Model\nmetadata: {name: [unclosed\n")
        #expect(broken.objects.isEmpty && broken.problems.first?.message.contains("not valid YAML") == true)
        #expect(broken.problems.first?.line != nil)
    }

    @Test("a rendered spec reads back as the same spec, as YAML and with defaults filled in")
    func roundTrip() throws {
        guard case .model(let spec)? = SpecDocuments.read(documentedExample).objects.first?.body else {
            Issue.record("no model read")
            return
        }
        let yaml = SpecRendering.yaml(SpecRendering.document(spec, generation: 3, inferred: false))
        #expect(yaml.contains("generation: 3"))
        // The generation is metadata the server sets; a user who saves and applies the output
        // sends it back, and it is ignored.
        let reread = SpecDocuments.read(yaml)
        #expect(reread.problems.isEmpty, "\(reread.problems)\n\(yaml)")
        guard case .model(let back)? = reread.objects.first?.body else {
            Issue.record("the rendered spec did not read back:\n\(yaml)")
            return
        }
        #expect(SpecRendering.normalized(back) == SpecRendering.normalized(spec), "\(yaml)")
        // A minimal spec gets every default.
        let minimal = Infranaut_V1_ModelSpec.with { $0.name = "m" }
        let filled = SpecRendering.normalized(minimal)
        #expect(filled.window.sizeMs == 3_600_000 && filled.drift.method == "auto" && filled.retention.windowsMs > 0)
        #expect(SpecDuration.milliseconds("1500ms") == 1_500 && SpecDuration.text(5_400_000) == "90m")
        #expect(SpecDuration.milliseconds("1.5h") == nil && SpecDuration.milliseconds("h") == nil)
    }

    @Test("spec.performance: a binary threshold and multiclass classes read, render and check their task")
    func performanceSection() throws {
        let multiclass = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}
            spec:
              task: multiclass-classification
              columns: {prediction: predicted, label: actual}
              performance: {classes: [cat, dog, bird]}
            """
        let read = SpecDocuments.read(multiclass)
        #expect(read.problems.isEmpty, "\(read.problems)")
        guard case .model(let spec)? = read.objects.first?.body else {
            Issue.record("no model read")
            return
        }
        #expect(spec.performance.classes == ["cat", "dog", "bird"])
        let yaml = SpecRendering.yaml(SpecRendering.document(spec, generation: 1, inferred: false))
        guard case .model(let back)? = SpecDocuments.read(yaml).objects.first?.body else {
            Issue.record("the rendered spec did not read back:\n\(yaml)")
            return
        }
        #expect(back.performance == spec.performance, "\(yaml)")
        // No default is filled in (0 means 0.5), so specs applied before the section existed
        // still compare unchanged.
        let binary = SpecRendering.normalized(.with { $0.task = .binaryClassification })
        #expect(binary.performance.threshold == 0 && !binary.hasPerformance)

        let wrong = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}
            spec:
              task: regression
              performance: {threshold: 1.5, classes: [a, a]}
            """
        let (objects, problems) = SpecDocuments.read(wrong)
        #expect(objects.isEmpty)
        let messages = problems.filter { $0.path.hasPrefix("spec.performance") }.map { "\($0.path): \($0.message)" }
        #expect(messages.contains("spec.performance.threshold: goes only with task: binary-classification"))
        #expect(messages.contains("spec.performance.threshold: 1.5 is outside (0, 1]"))
        #expect(messages.contains("spec.performance.classes: goes only with task: multiclass-classification"))
        #expect(messages.contains("spec.performance.classes[1]: \"a\" is listed twice"), "\(messages)")
        #expect(problems.allSatisfy { $0.line == 6 }, "\(problems)")
    }

    @Test("channels: repeat_interval is a duration from 1s to 30d, or never")
    func channelRepeats() throws {
        func read(_ line: String) -> (Infranaut_V1_NotificationChannel?, [String]) {
            let text = """
                apiVersion: infranaut.io/v1
                kind: NotificationChannel
                metadata: {name: hook}
                spec: {type: webhook, url: "http://127.0.0.1:9000/hook", \(line)}
                """
            let read = SpecDocuments.read(text)
            guard read.problems.isEmpty, case .channel(let channel)? = read.objects.first?.body else {
                return (nil, read.problems.map { "\($0.path): \($0.message)" })
            }
            return (channel, [])
        }
        #expect(read("repeat_interval: 30m").0?.repeatIntervalMs == 1_800_000)
        #expect(read("repeat_interval: never").0?.noRepeat == true)
        #expect(read("repeat_interval: 500ms").1 == ["spec.repeat_interval: 500ms is outside 1s to 30d"])
        #expect(read("repeat_interval: 0").1.contains("spec.repeat_interval: 0 is not an interval; write never"))
        #expect(read("repeat_interval: soon").1.first?.hasPrefix("spec.repeat_interval: expected a duration") == true)
    }

    @Test("spec.alerts: the documented rule reads, renders and reads back; bad rules are named by path and line")
    func alertsSection() throws {
        let text = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: fraud-v1}
            spec:
              task: binary-classification
              columns: {prediction: score}
              features: [{name: amount, type: numeric}, {name: country, type: categorical}]
              segments: [country]
              alerts:
                - name: dataset-drift
                  metric: drift_share
                  condition: {above: 0.1}
                  for: 1
                  severity: warning
                  notify: [ops-webhook]
                - name: amount-missing
                  metric: missing_rate
                  feature: amount
                  condition: {anomaly: 3.5}
                  for: 2
                  severity: critical
                  labels: {team: risk}
                  summary: "{{model}}: {{feature}} misses {{value}}"
                  runbook_url: https://runbooks.example/missing
                  per_segment: true
                - {name: performance-drop, disabled: true}
            """
        let read = SpecDocuments.read(text)
        #expect(read.problems.isEmpty, "\(read.problems)")
        guard case .model(let spec)? = read.objects.first?.body else {
            Issue.record("no model read")
            return
        }
        #expect(spec.alerts.map(\.name) == ["dataset-drift", "amount-missing", "performance-drop"])
        #expect(spec.alerts[0].metric == "drift_share" && spec.alerts[0].condition == .above(0.1))
        #expect(spec.alerts[0].severity == .warning && spec.alerts[0].notify == ["ops-webhook"])
        #expect(spec.alerts[1].condition == .anomaly(3.5) && spec.alerts[1].forWindows == 2)
        #expect(spec.alerts[1].labels == ["team": "risk"] && spec.alerts[1].perSegment)
        #expect(spec.alerts[2].disabled)
        let yaml = SpecRendering.yaml(SpecRendering.document(spec, generation: 1, inferred: false))
        guard case .model(let back)? = SpecDocuments.read(yaml).objects.first?.body else {
            Issue.record("the rendered spec did not read back:\n\(yaml)")
            return
        }
        #expect(back.alerts == spec.alerts, "\(yaml)")

        let wrong = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}
            spec:
              features: [{name: amount, type: numeric}]
              alerts:
                - {name: a, metric: drift_share, condition: {above: 0.1, below: 0.2}}
                - {name: a, metric: nope, condition: {above: 1}}
                - {name: c, metric: missing_rate, feature: colour, condition: {change_point: 2}}
                - {name: d, metric: roc_auc, condition: {below: 0.7}, per_segment: true}
                - {name: e, disabled: true}
                - {name: "bad name", metric: rows, condition: {below: 1}, runbook_url: "ftp://x"}
                - {name: g, metric: rows}
                - {name: h, metric: idle_windows, condition: {below: 1}, for: 2}
            """
        // As a node reads it: it knows its defaults, so turning off one it lacks is a problem.
        var limits = SpecLimits()
        limits.defaultRuleNames = Set(AlertRule.defaults.map(\.name))
        let (objects, problems) = SpecDocuments.read(wrong, limits: limits)
        #expect(objects.isEmpty)
        // The CLI does not know the cluster's defaults, and leaves that check to the node.
        #expect(!SpecDocuments.read(wrong).problems.contains { $0.path == "spec.alerts[4].disabled" })
        let messages = problems.map { "\($0.path): \($0.message)" }
        for expected in [
            "spec.alerts[0].condition: give exactly one of above, below, anomaly, change_point",
            "spec.alerts[1].name: \"a\" is given twice",
            "spec.alerts[2].feature: \"colour\" is not a declared feature of spec.features",
            "spec.alerts[2].condition.change_point: 2.0 is not a confidence δ in (0, 1)",
            "spec.alerts[3].metric: roc_auc needs the spec's task",
            "spec.alerts[3].per_segment: the spec has no segments to judge",
            "spec.alerts[6].condition: missing; one of above, below, anomaly, change_point",
            "spec.alerts[7].condition: idle_windows takes only above: a number of windows",
            "spec.alerts[7].for: idle_windows fires when it holds; leave for out",
        ] {
            #expect(messages.contains(expected), "\(expected) not in \(messages)")
        }
        #expect(
            messages.contains {
                $0.hasPrefix("spec.alerts[1].metric: \"nope\" is not one of dataset_drift, drift_share")
            })
        #expect(messages.contains { $0.hasPrefix("spec.alerts[4].disabled: there is no default rule \"e\"") })
        #expect(messages.contains { $0.hasPrefix("spec.alerts[5].name: a rule name is") })
        #expect(messages.contains { $0.hasPrefix("spec.alerts[5].runbook_url: an http") })
        // Problems found while reading carry their line; those of the rules, the rule's line.
        #expect(problems.first { $0.path == "spec.alerts[0].condition" }?.line == 7, "\(problems)")
        #expect(problems.first { $0.path == "spec.alerts[3].metric" }?.line == 10, "\(problems)")
    }
}

@Suite("alert defaults files")
struct AlertDefaultsFileTests {
    @Test("kind: AlertDefaults reads a table of rules; a disabled entry, a bad metric and a missing list are named")
    func readsAndChecks() {
        let good = """
            apiVersion: infranaut.io/v1
            kind: AlertDefaults
            metadata: {name: company}
            spec:
              alerts:
                - {name: team-drift, metric: drift_share, condition: {above: 0.2}, notify: [oncall]}
                - {name: auc-low, metric: roc_auc, condition: {below: 0.7}, severity: critical}
            """
        let read = SpecDocuments.read(good)
        #expect(read.problems.isEmpty, "\(read.problems)")
        guard case .alertDefaults(let rules)? = read.objects.first?.body else {
            Issue.record("no table read")
            return
        }
        #expect(rules.map(\.name) == ["team-drift", "auc-low"] && rules[0].notify == ["oncall"])

        let bad = """
            apiVersion: infranaut.io/v1
            kind: AlertDefaults
            spec:
              alerts:
                - {name: dataset-drift, disabled: true}
                - {name: x, metric: nope, condition: {above: 1}}
            """
        let messages = SpecDocuments.read(bad).problems.map { "\($0.path): \($0.message)" }
        #expect(
            messages.contains("spec.alerts[0].disabled: a table of defaults lists only the rules it gives"),
            "\(messages)")
        #expect(messages.contains { $0.hasPrefix("spec.alerts[1].metric: \"nope\" is not one of") })
        let empty = SpecDocuments.read("apiVersion: infranaut.io/v1\nkind: AlertDefaults\nspec: {}\n").problems
        #expect(empty.map(\.path) == ["spec.alerts"])
    }
}

@Suite("spec text a node takes from clients")
struct SpecTextBoundsTests {
    @Test("anchors, aliases and deep nesting are refused with their line; text with & and * in it is not")
    func refusesExpansionAndDepth() {
        let bomb = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            """
        #expect(SpecTextBounds.problem(bomb)?.line == 4)
        #expect(SpecTextBounds.problem("x:\n  - *a\n")?.line == 2)
        #expect(SpecTextBounds.problem("<<: *base\n")?.line == 1)
        let fine = """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: m}   # *not* an alias in a comment
            spec:
              alerts:
                - {name: a, metric: rows, condition: {below: 1}, summary: "*urgent* {{model}}"}
                - name: b
                  summary: drift & missing values, 3 * 4
                  runbook_url: 'https://x/&y'
            """
        #expect(SpecTextBounds.problem(fine) == nil)
        #expect(SpecTextBounds.problem(String(repeating: "[", count: 65))?.message.contains("deeper") == true)
        #expect(SpecTextBounds.problem(String(repeating: " ", count: 201) + "x: 1")?.message.contains("deeper") == true)
        #expect(SpecTextBounds.problem(String(repeating: "- ", count: 101) + "x")?.message.contains("deeper") == true)
    }
}
