import Cluster
import Drill
import Foundation
import Monitoring
import Receiver
import Testing
import Wire

private let hour: Int64 = 3_600_000

private func windowSpec(_ name: String = "shifty", reference: String = "{from: upload}") -> String {
    """
    apiVersion: infranaut.io/v1
    kind: Model
    metadata: {name: \(name)}
    spec:
      features:
        - {name: f0, type: numeric}
        - {name: f1, type: numeric}
        - {name: f2, type: numeric}
        - {name: region, type: categorical}
      segments: [region]
      window: {size: 1h, lateness: 0}
      reference: \(reference)
    """
}

/// `rows` rows of f0..f2 ~ N(0, 1) (f1 shifted by `shift`) and region a/b, at event times spread
/// over `[start, start + span)`.
private func batch(
    model: String = "shifty", key: String, rows: Int, start: Int64, span: Int64, shift: Double = 0, seed: UInt64,
    reference: Bool = false
) -> Infranaut_V1_Request {
    var random = SplitMix64(seed: seed)
    func normal() -> Double {
        let u = Double(random.next() >> 11) / Double(1 << 53) + 1e-12
        let v = Double(random.next() >> 11) / Double(1 << 53)
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
    let f0 = (0..<rows).map { _ in normal() }
    let f1 = (0..<rows).map { _ in normal() + shift }
    let f2 = (0..<rows).map { _ in normal() }
    return .with {
        $0.version = 1
        $0.ingest = .with {
            $0.idempotencyKey = key
            $0.batch = .with {
                $0.modelID = model
                $0.rowCount = UInt32(rows)
                $0.reference = reference
                $0.eventTimeUnixMs = (0..<rows).map { start + span * Int64($0) / Int64(rows) }
                $0.columns = [
                    .with {
                        $0.name = "f0"
                        $0.doubles = .with { $0.values = f0 }
                    },
                    .with {
                        $0.name = "f1"
                        $0.doubles = .with { $0.values = f1 }
                    },
                    .with {
                        $0.name = "f2"
                        $0.doubles = .with { $0.values = f2 }
                    },
                    .with {
                        $0.name = "region"
                        $0.strings = .with { $0.values = (0..<rows).map { $0 % 2 == 0 ? "a" : "b" } }
                    },
                ]
            }
        }
    }
}

private func send(_ request: Infranaut_V1_Request, through node: NodeProcess) async throws {
    let client = try RequestClient(dial: node.address)
    defer { client.close() }
    for _ in 0..<20 {
        if let reply = try? await call(client, request, timeout: .seconds(10)), reply.ingest.status.code == .ok {
            return
        }
        try await Task.sleep(for: .milliseconds(200))
    }
    throw NodeTestError("a batch was not acknowledged through \(node.address)")
}

/// The model's windows as `infranaut windows --json` prints them.
private func windows(_ node: NodeProcess, model: String = "shifty", _ extra: [String] = []) async throws
    -> [[String: Any]]?
{
    try await listed("windows", ["windows", "--node", node.address, "--model", model, "--json"] + extra)
}

/// Applies a spec (YAML) through `node` with `infranaut apply`, expecting it to be accepted.
private func apply(_ yaml: String, through node: NodeProcess) async throws {
    let path = TestScratch.track(NSTemporaryDirectory() + "spec-\(UInt64.random(in: 0...UInt64.max)).yaml")
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    let applied = try await runCLI(["apply", "-f", path, "--node", node.address])
    #expect(applied.status == 0, "\(applied.stderr)")
}

/// The array under `key` in what a CLI command printed as JSON; nil when it failed.
private func listed(_ key: String, _ arguments: [String]) async throws -> [[String: Any]]? {
    let run = try await runCLI(arguments)
    guard run.status == 0 else { return nil }
    let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
    return object?[key] as? [[String: Any]]
}

private func rfc3339Text(_ ms: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.timeZone = TimeZone(identifier: "UTC")
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

private func drifting(_ window: [String: Any]) -> [String] {
    ((window["features"] as? [[String: Any]]) ?? []).filter { $0["drift"] as? Bool == true }.compactMap {
        $0["name"] as? String
    }
}

/// `n` scores (uniform, raised to `skew`) that are calibrated probabilities: each row's label is 1
/// with probability its score.
private func calibratedRows(_ n: Int, skew: Double, using random: inout SplitMix64) -> (
    scores: [Double], labels: [Double]
) {
    let scores = (0..<n).map { _ in pow(Double.random(in: 0..<1, using: &random), skew) }
    return (scores, scores.map { Double.random(in: 0..<1, using: &random) < $0 ? 1 : 0 })
}

/// A window's estimate of `metric` as `windows --json` prints it under `performance.estimated`.
private func estimate(_ performance: [String: Any]?, _ metric: String) -> (
    value: Double, lower: Double, upper: Double
)? {
    guard let e = (performance?["estimated"] as? [String: Any])?[metric] as? [String: Double],
        let value = e["value"], let lower = e["lower"], let upper = e["upper"]
    else { return nil }
    return (value, lower, upper)
}

/// A batch of a binary classifier's telemetry: `f0`, `region` (a, b in turn), the score and, when
/// `labels` is given, the label column `is_fraud` (NaN: no label yet).
private func scored(
    key: String, scores: [Double], labels: [Double]?, start: Int64, span: Int64, model: String = "scored"
) -> Infranaut_V1_Request {
    let rows = scores.count
    return .with {
        $0.version = 1
        $0.ingest = .with {
            $0.idempotencyKey = key
            $0.batch = .with {
                $0.modelID = model
                $0.rowCount = UInt32(rows)
                $0.eventTimeUnixMs = (0..<rows).map { start + span * Int64($0) / Int64(rows) }
                $0.columns = [
                    .with {
                        $0.name = "f0"
                        $0.doubles = .with { $0.values = scores.map { $0 * 10 } }
                    },
                    .with {
                        $0.name = "region"
                        $0.strings = .with { $0.values = (0..<rows).map { $0 % 2 == 0 ? "a" : "b" } }
                    },
                    .with {
                        $0.name = "score"
                        $0.doubles = .with { $0.values = scores }
                    },
                ]
                if let labels {
                    $0.columns.append(
                        .with {
                            $0.name = "is_fraud"
                            $0.doubles = .with { $0.values = labels }
                        })
                }
            }
        }
    }
}

@Suite("windows on real nodes", .serialized, .timeLimit(.minutes(4)))
struct WindowProcessTests {
    @Test(
        "three hours, one feature shifted in the second: only that window drifts, late rows count, segments are apart, and a new leader serves the same results"
    )
    func shiftedHour() async throws {
        let nodes = try await startCluster(["w1", "w2", "w3"])
        let path = TestScratch.track(NSTemporaryDirectory() + "windows-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try windowSpec().write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runCLI(["apply", "-f", path, "--node", nodes[0].address])
        #expect(applied.status == 0 && applied.stdout.contains("model/shifty created"), "\(applied.stderr)")

        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let t0 = (now / hour - 5) * hour
        try await send(
            batch(key: "ref", rows: 8_000, start: t0 - 24 * hour, span: 24 * hour, seed: 1, reference: true),
            through: nodes[1])
        // Three hours of traffic, each in four batches through the three nodes in turn; f1 shifts
        // in the second hour only. (With these seeds the unshifted features' distances stay under
        // 0.045, checked against SciPy's wasserstein_distance; the threshold is 0.1.)
        var sent = 0
        for h in 0..<3 {
            for part in 0..<4 {
                let start = t0 + Int64(h) * hour + Int64(part) * hour / 4
                try await send(
                    batch(
                        key: "h\(h)-\(part)", rows: 1_000, start: start, span: hour / 4, shift: h == 1 ? 1.0 : 0,
                        seed: UInt64(100 + sent)),
                    through: nodes[sent % 3])
                sent += 1
            }
        }
        // A row in the fourth hour moves the watermark past the third.
        try await send(batch(key: "h3", rows: 2, start: t0 + 3 * hour, span: 60_000, seed: 999), through: nodes[2])
        // Late: rows of the first hour, after it closed.
        try await send(batch(key: "late", rows: 5, start: t0 + 600_000, span: 60_000, seed: 998), through: nodes[0])

        let whole = try await windows(nodes[2], ["--segment", "none"])
        guard let whole, whole.count == 3 else {
            Issue.record("expected 3 closed whole-model windows, got \(String(describing: whole))")
            return
        }
        #expect(drifting(whole[0]).isEmpty, "\(whole[0])")
        #expect(drifting(whole[1]) == ["f1"], "\(whole[1])")
        #expect(drifting(whole[2]).isEmpty, "\(whole[2])")
        #expect(whole.map { $0["rows"] as? Int } == [4_000, 4_000, 4_000])
        #expect(whole.map { $0["late_rows"] as? Int } == [5, 0, 0])
        #expect(whole[1]["dataset_drift"] as? Bool == false)  // one of four features

        // Each region's windows are separate: half the rows, the same verdicts.
        let regionA = try await windows(nodes[1], ["--segment", "region=a"])
        #expect(regionA?.map { $0["rows"] as? Int } == [2_000, 2_000, 2_000])
        #expect(regionA.map { $0.map(drifting) } == [[], ["f1"], []])
        // status names the newest closed window's verdicts next to the all-time figures.
        let status = try await runCLI(["status", "--node", nodes[1].address, "--model", "shifty"])
        #expect(
            status.stdout.contains("latest window \(rfc3339Text(t0 + 2 * hour)): 4000 rows, 0 late, drift share 0.00"),
            "\(status.stdout)")
        let open = try await windows(nodes[0], ["--segment", "none", "--include-open"])
        #expect(open?.count == 4 && open?.last?["open"] as? Bool == true)

        // The leader of the model's group dies; the next one serves the same results.
        let before = try await runCLI(["windows", "--node", nodes[0].address, "--model", "shifty", "--json"])
        #expect(before.status == 0 && before.stdout.contains("\"late_rows\" : 5"), "\(before.stderr)")
        let roles = try await replicaRoles(of: "shifty", asking: nodes[0].address)
        let leader = nodes.first { $0.address == roles.primary }!
        leader.kill()
        let survivor = nodes.first { $0 !== leader }!
        let same = try await eventually(within: .seconds(60)) {
            let after = try await runCLI(["windows", "--node", survivor.address, "--model", "shifty", "--json"])
            return after.status == 0 && after.stdout == before.stdout
        }
        #expect(same != nil, "the new leader did not serve the same window results")
    }

    @Test(
        "references from the first rows and from the previous window, on real nodes: the same shifted hours drift against the first and not against the one before"
    )
    func referencePolicies() async throws {
        let nodes = try await startCluster(["r1", "r2", "r3"])
        let path = TestScratch.track(NSTemporaryDirectory() + "policies-\(UInt64.random(in: 0...UInt64.max)).yaml")
        let specs = [
            windowSpec("first", reference: "{from: first-rows, rows: 4000}"),
            windowSpec("previous", reference: "{from: previous-window}"),
        ]
        try specs.joined(separator: "\n---\n").write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runCLI(["apply", "-f", path, "--node", nodes[0].address])
        #expect(applied.status == 0 && applied.stdout.contains("model/previous created"), "\(applied.stderr)")

        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 5) * hour
        // Hour 0 as the first rows; f1 shifted by 1 in hours 1 and 2 alike; one row in hour 3 closes
        // hour 2. Both models get the same rows, through the three nodes in turn.
        var sent = 0
        for model in ["first", "previous"] {
            for h in 0..<3 {
                for part in 0..<4 {
                    let start = t0 + Int64(h) * hour + Int64(part) * hour / 4
                    try await send(
                        batch(
                            model: model, key: "\(model)-h\(h)-\(part)", rows: 1_000, start: start, span: hour / 4,
                            shift: h == 0 ? 0 : 1.0, seed: UInt64(100 + h * 4 + part)),
                        through: nodes[sent % 3])
                    sent += 1
                }
            }
            try await send(
                batch(model: model, key: "\(model)-h3", rows: 2, start: t0 + 3 * hour, span: 60_000, seed: 999),
                through: nodes[sent % 3])
        }

        let first = try await windows(nodes[1], model: "first", ["--segment", "none"])
        let previous = try await windows(nodes[2], model: "previous", ["--segment", "none"])
        #expect(first?.map { $0["rows"] as? Int } == [4_000, 4_000, 4_000])
        #expect(previous?.map { $0["rows"] as? Int } == [4_000, 4_000, 4_000])
        // Against the first 4,000 rows (hour 0 itself): hours 1 and 2 drift on f1.
        #expect(first.map { $0.map(drifting) } == [[], ["f1"], ["f1"]], "\(String(describing: first))")
        // Against the window before: hour 0 has no reference, hour 1 drifts from hour 0, hour 2 is
        // like hour 1.
        #expect(previous.map { $0.map(drifting) } == [[], ["f1"], []], "\(String(describing: previous))")
        #expect(
            previous?.first?["features"].map {
                ($0 as? [[String: Any]])?.allSatisfy { $0["score"] == nil || $0["score"] is NSNull }
            } == true)
    }

    @Test("labels inline with telemetry give each window and segment its realized performance, as in the rows")
    func inlineLabels() async throws {
        let node = NodeProcess(arguments: ["--node-id", "perf"])
        try await node.start()
        let path = TestScratch.track(NSTemporaryDirectory() + "scored-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try """
        apiVersion: infranaut.io/v1
        kind: Model
        metadata: {name: scored}
        spec:
          task: binary-classification
          columns: {prediction: score, label: is_fraud}
          features:
            - {name: f0, type: numeric}
            - {name: region, type: categorical}
          segments: [region]
          window: {size: 1h, lateness: 0}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runCLI(["apply", "-f", path, "--node", node.address])
        #expect(applied.status == 0, "\(applied.stderr)")

        // Hour 0: 400 rows with scores i/400 and labels "score > 0.3 except every 7th row flipped";
        // rows 10..<20 have no label yet (NaN), rows 20..<25 an unreadable label (2). Hour 1: no
        // label column at all. One row in hour 2 closes hour 1.
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 4) * hour
        let scores = (0..<400).map { Double($0) / 400 }
        var labels = scores.enumerated().map { i, s in (s > 0.3) != (i % 7 == 0) ? 1.0 : 0.0 }
        for i in 10..<20 { labels[i] = .nan }
        for i in 20..<25 { labels[i] = 2 }
        try await send(scored(key: "h0", scores: scores, labels: labels, start: t0, span: hour), through: node)
        try await send(scored(key: "h1", scores: scores, labels: nil, start: t0 + hour, span: hour), through: node)
        try await send(scored(key: "h2", scores: [0.5], labels: nil, start: t0 + 2 * hour, span: 1), through: node)

        // What the rows say, counted here: labelled rows of hour 0 and their confusion at 0.5.
        func expected(_ rows: [Int]) -> (labelled: Int, unusable: Int, tp: Int, fp: Int, tn: Int, fn: Int) {
            var e = (labelled: 0, unusable: 0, tp: 0, fp: 0, tn: 0, fn: 0)
            for i in rows where !labels[i].isNaN {
                guard labels[i] == 0 || labels[i] == 1 else {
                    e.unusable += 1
                    continue
                }
                e.labelled += 1
                switch (labels[i] == 1, scores[i] >= 0.5) {
                case (true, true): e.tp += 1
                case (false, true): e.fp += 1
                case (false, false): e.tn += 1
                case (true, false): e.fn += 1
                }
            }
            return e
        }
        func check(_ window: [String: Any]?, _ e: (labelled: Int, unusable: Int, tp: Int, fp: Int, tn: Int, fn: Int)) {
            let performance = window?["performance"] as? [String: Any]
            let realized = performance?["realized"] as? [String: Double]
            #expect(performance?["labelled_rows"] as? Int == e.labelled, "\(String(describing: performance))")
            #expect(performance?["unusable_rows"] as? Int == e.unusable)
            #expect(realized?["tp"] == Double(e.tp) && realized?["fp"] == Double(e.fp))
            #expect(realized?["tn"] == Double(e.tn) && realized?["fn"] == Double(e.fn))
            let accuracy = Double(e.tp + e.tn) / Double(e.labelled)
            #expect(realized.flatMap { $0["accuracy"] }.map { abs($0 - accuracy) < 1e-12 } == true)
            #expect(realized?["roc_auc"] != nil && realized?["log_loss"] != nil && realized?["ece"] != nil)
        }
        let whole = try await windows(node, model: "scored", ["--segment", "none"])
        #expect(whole?.count == 2)
        check(whole?.first, expected(Array(0..<400)))
        #expect(whole?.last?["performance"] == nil, "hour 1 carried no label")
        let regionA = try await windows(node, model: "scored", ["--segment", "region=a"])
        check(regionA?.first, expected(Array(stride(from: 0, to: 400, by: 2))))
        // The table names the headline metric and the labelled rows, "-" for the hour without labels.
        let table = try await runCLI(["windows", "--node", node.address, "--model", "scored", "--segment", "none"])
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("PERFORMANCE") == true, "\(table.stdout)")
        #expect(
            lines.count == 3 && lines[1].contains("roc_auc 0.")
                && lines[1].contains("\(expected(Array(0..<400)).labelled) labelled"))
        #expect(lines.count == 3 && !lines[2].contains("labelled"), "\(table.stdout)")

        // After kill -9 the model comes back from its checkpoint and log (parked until read): the
        // same figures.
        node.kill(SIGKILL)
        let again = NodeProcess(dataDirectory: node.dataDirectory, arguments: ["--node-id", "perf"])
        try await again.start()
        defer { again.kill(SIGKILL) }
        var restored: [[String: Any]]?
        for _ in 0..<50 {
            restored = try await windows(again, model: "scored", ["--segment", "none"])
            if restored != nil { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let before = whole?.first?["performance"] as? NSDictionary
        #expect(before != nil && before == restored?.first?["performance"] as? NSDictionary)
    }

    @Test(
        "delayed labels end to end: three windows estimated before any label; the primary killed -9; labels through another node join once, realized as in the rows and inside the estimates' bands"
    )
    func delayedLabels() async throws {
        let nodes = try await startCluster(["d1", "d2", "d3"])
        try await apply(
            """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: delayed}
            spec:
              task: binary-classification
              columns: {id: request_id, timestamp: ts, prediction: score, label: is_fraud}
              features:
                - {name: f0, type: numeric}
                - {name: region, type: categorical}
              segments: [region]
              window: {size: 1h, lateness: 0}
              reference: {from: upload}
            """, through: nodes[0])

        // Calibrated scores: a row is positive with probability its score. The labelled
        // reference: 3,000 uniform scores. Hours 0 to 2: 400 predictions each, hour 1's scores
        // skewed low (the inputs drifted); one row in hour 3 closes hour 2. Pushed through d1, with
        // ids and without labels.
        var random = SplitMix64(seed: 1201)
        func rows(_ n: Int, skew: Double) -> (scores: [Double], labels: [Double]) {
            calibratedRows(n, skew: skew, using: &random)
        }
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 5) * hour
        let reference = rows(3_000, skew: 1)
        var upload = scored(
            key: "ref", scores: reference.scores, labels: reference.labels, start: t0 - hour,
            span: hour, model: "delayed")
        upload.ingest.batch.reference = true
        try await send(upload, through: nodes[0])
        let hours = [rows(400, skew: 1), rows(400, skew: 2.5), rows(400, skew: 1)]
        var lines = ["request_id,ts,f0,region,score"]
        for (h, hourRows) in hours.enumerated() {
            for (i, score) in hourRows.scores.enumerated() {
                let ts = t0 + Int64(h) * hour + Int64(i) * 1000
                lines.append("r\(h)-\(i),\(ts),\(score * 10),\(i % 2 == 0 ? "a" : "b"),\(score)")
            }
        }
        lines.append("r3-0,\(t0 + 3 * hour),1,a,0.5")
        let predictions = TestScratch.track(NSTemporaryDirectory() + "delayed-\(UInt64.random(in: 0...UInt64.max)).csv")
        try (lines.joined(separator: "\n") + "\n").write(toFile: predictions, atomically: true, encoding: .utf8)
        let pushed = try await runCLI([
            "push", "--node", nodes[0].address, "--model", "delayed", "--file", predictions, "--id-column",
            "request_id", "--time-column", "ts", "--prediction-column", "score",
        ])
        #expect(pushed.status == 0, "\(pushed.stderr)")

        // Before any label: each closed hour has estimates and no realized figures.
        func performance(_ listed: [[String: Any]]?) -> [[String: Any]] {
            (listed ?? []).map { $0["performance"] as? [String: Any] ?? [:] }
        }
        let before = performance(try await windows(nodes[0], model: "delayed", ["--segment", "none"]))
        #expect(before.count == 3, "\(before)")
        #expect(before.allSatisfy { $0["labelled_rows"] as? Int == 0 }, "\(before)")
        let metrics = ["accuracy", "precision", "recall", "f1", "roc_auc"]
        let estimates = before.map { p in metrics.map { estimate(p, $0) } }
        #expect(estimates.allSatisfy { $0.allSatisfy { $0 != nil } }, "every metric estimated: \(before)")

        // The model's primary dies between the predictions and their labels.
        let roles = try await replicaRoles(of: "delayed", asking: nodes[0].address)
        let primary = try #require(nodes.first { $0.address == roles.primary })
        primary.kill(SIGKILL)
        let survivors = nodes.filter { $0 !== primary }

        // Labels, later, through a node other than d1 (and not the dead one): every prediction of
        // the three hours, five ids never predicted and ten repeated.
        var labelRows = ["request_id,is_fraud"]
        for (h, hourRows) in hours.enumerated() {
            for (i, y) in hourRows.labels.enumerated() { labelRows.append("r\(h)-\(i),\(Int(y))") }
        }
        for i in 0..<5 { labelRows.append("nobody-\(i),1") }
        for i in 0..<10 { labelRows.append("r0-\(i),\(Int(hours[0].labels[i]))") }
        let labelFile = TestScratch.track(NSTemporaryDirectory() + "labels-\(UInt64.random(in: 0...UInt64.max)).csv")
        try (labelRows.joined(separator: "\n") + "\n").write(toFile: labelFile, atomically: true, encoding: .utf8)
        func sendLabels(through node: NodeProcess) async throws -> [String: Any]? {
            let run = try await runCLI([
                "labels", "--node", node.address, "--model", "delayed", "--file", labelFile, "--id-column",
                "request_id", "--label-column", "is_fraud", "--batch-size", "100", "--json",
            ])
            #expect(run.status == 0, "\(run.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            return object?["labels"] as? [String: Any]
        }
        let labelNode = survivors.first { $0 !== nodes[0] } ?? survivors[0]
        let first = try await sendLabels(through: labelNode)
        #expect(first?["joined"] as? Int == 1_200 && first?["unknown_ids"] as? Int == 5, "\(String(describing: first))")
        #expect(first?["already_labelled"] as? Int == 10 && first?["unusable"] as? Int == 0)

        // What the rows say, counted here: the confusion metrics at 0.5, and ROC AUC over every
        // pair of a positive and a negative (ties count half), as scikit-learn computes them.
        func expected(_ r: (scores: [Double], labels: [Double]), _ indices: [Int]) -> [String: Double] {
            var (tp, fp, tn, fn) = (0.0, 0.0, 0.0, 0.0)
            for i in indices {
                switch (r.scores[i] >= 0.5, r.labels[i] == 1) {
                case (true, true): tp += 1
                case (true, false): fp += 1
                case (false, false): tn += 1
                case (false, true): fn += 1
                }
            }
            let positives = indices.filter { r.labels[$0] == 1 }, negatives = indices.filter { r.labels[$0] == 0 }
            var pairs = 0.0
            for p in positives {
                for n in negatives { pairs += r.scores[p] > r.scores[n] ? 1 : r.scores[p] == r.scores[n] ? 0.5 : 0 }
            }
            return [
                "accuracy": (tp + tn) / Double(indices.count), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                "f1": 2 * tp / (2 * tp + fp + fn), "roc_auc": pairs / Double(positives.count * negatives.count),
            ]
        }
        func check(_ listed: [[String: Any]]?, indices: [Int], rows expectedRows: Int) {
            let after = performance(listed)
            #expect(after.count == 3 && after.allSatisfy { $0["labelled_rows"] as? Int == expectedRows }, "\(after)")
            for (h, p) in after.enumerated() where h < hours.count {
                let realized = p["realized"] as? [String: Double] ?? [:]
                for (metric, value) in expected(hours[h], indices) {
                    // AUC from the node's score histogram (1,000 bins); the rest are exact.
                    let tolerance = metric == "roc_auc" ? 0.002 : 1e-12
                    #expect(
                        realized[metric].map { abs($0 - value) <= tolerance } == true,
                        "hour \(h) \(metric): \(String(describing: realized[metric])) vs \(value)")
                }
            }
        }
        let everyRow = Array(0..<400), evens = Array(stride(from: 0, to: 400, by: 2))
        let whole = try await windows(labelNode, model: "delayed", ["--segment", "none"])
        check(whole, indices: everyRow, rows: 400)
        check(try await windows(labelNode, model: "delayed", ["--segment", "region=a"]), indices: evens, rows: 200)

        // The estimates made before the labels stand unchanged beside the realized figures, and
        // the realized accuracy, F1 and AUC lie inside their bands.
        let after = performance(whole)
        for (h, p) in after.enumerated() where h < estimates.count {
            for (m, metric) in metrics.enumerated() {
                let now = estimate(p, metric), then = estimates[h][m]
                #expect(now?.value == then?.value && now?.lower == then?.lower, "hour \(h) \(metric)")
                guard ["accuracy", "f1", "roc_auc"].contains(metric), let band = then,
                    let realized = (p["realized"] as? [String: Double])?[metric]
                else { continue }
                #expect(band.lower <= realized && realized <= band.upper, "hour \(h) \(metric): \(band) vs \(realized)")
            }
        }

        // The same labels again through the other survivor: each is labelled already, and the
        // figures stay as they were.
        let other = survivors.first { $0 !== labelNode } ?? labelNode
        let second = try await sendLabels(through: other)
        #expect(
            second?["joined"] as? Int == 0 && second?["already_labelled"] as? Int == 1_210,
            "\(String(describing: second))")
        #expect(second?["unknown_ids"] as? Int == 5)
        check(try await windows(other, model: "delayed", ["--segment", "none"]), indices: everyRow, rows: 400)
    }

    @Test(
        "compare: two versions' accuracy and AUC over their labelled windows, with the better one named, and clear refusals"
    )
    func compareVersions() async throws {
        let node = NodeProcess(arguments: ["--node-id", "ab"])
        try await node.start()
        let path = TestScratch.track(NSTemporaryDirectory() + "ab-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try """
        apiVersion: infranaut.io/v1
        kind: Model
        metadata: {name: ab}
        spec:
          task: binary-classification
          columns: {prediction: score, label: y}
          features: [{name: f0, type: numeric}]
          window: {size: 1h, lateness: 0}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try await runCLI(["apply", "-f", path, "--node", node.address]).status == 0)
        // v1 scores rank the labels well, v2 barely: 300 rows each in each of two hours (hour by
        // hour: the model's watermark is shared by its versions, so hour 1's rows close hour 0).
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 4) * hour
        var generator = SplitMix64(seed: 5)
        for (h, version, noise) in [(0, "v1", 0.3), (0, "v2", 0.6), (1, "v1", 0.3), (1, "v2", 0.6)] {
            let labels = (0..<300).map { _ in Bool.random(using: &generator) }
            let scores = labels.map { y in
                Swift.min(
                    1, Swift.max(0, (y ? 0.7 : 0.3) + noise * (Double.random(in: 0..<1, using: &generator) - 0.5) * 2))
            }
            let request = Infranaut_V1_Request.with {
                $0.version = 1
                $0.ingest = .with {
                    $0.idempotencyKey = "ab-\(version)-\(h)"
                    $0.batch = .with {
                        $0.modelID = "ab"
                        $0.version = version
                        $0.rowCount = 300
                        $0.eventTimeUnixMs = (0..<300).map { t0 + Int64(h) * hour + Int64($0) * hour / 300 }
                        $0.columns = [
                            .with {
                                $0.name = "f0"
                                $0.doubles = .with { $0.values = scores }
                            },
                            .with {
                                $0.name = "score"
                                $0.doubles = .with { $0.values = scores }
                            },
                            .with {
                                $0.name = "y"
                                $0.bools = .with { $0.values = labels }
                            },
                        ]
                    }
                }
            }
            try await send(request, through: node)
        }
        func compare(_ metric: String, _ extra: [String] = []) async throws -> (
            status: Int32, json: [String: Any]?, stderr: String
        ) {
            let run = try await runCLI(
                [
                    "compare", "--node", node.address, "--model", "ab", "--a", "v1", "--b", "v2", "--metric", metric,
                    "--json",
                ]
                    + extra)
            let object =
                run.status == 0 ? try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] : nil
            return (run.status, object, run.stderr)
        }
        // The open hours count too: each side's labelled rows are all 600.
        for metric in ["accuracy", "roc_auc", "f1"] {
            let result = try await compare(metric)
            #expect(result.status == 0, "\(result.stderr)")
            let a = result.json?["a"] as? [String: Any], b = result.json?["b"] as? [String: Any]
            #expect(
                a?["labelled_rows"] as? Int == 600 && b?["labelled_rows"] as? Int == 600,
                "\(String(describing: result.json))")
            #expect(result.json?["better"] as? String == "a", "\(metric): \(String(describing: result.json))")
            let p = result.json?["p_value"] as? Double ?? 1
            #expect(p < 1e-6, "\(metric) p \(p)")
        }
        // The values are the versions' own figures: v1's accuracy as `windows` reports it, merged.
        let accuracy = try await compare("accuracy")
        let windowsV1 = try await windows(
            node, model: "ab", ["--version", "v1", "--segment", "none", "--include-open"])
        let merged = (windowsV1 ?? []).reduce(into: (right: 0.0, n: 0.0)) { total, window in
            let performance = window["performance"] as? [String: Any]
            let n = Double(performance?["labelled_rows"] as? Int ?? 0)
            total.right += ((performance?["realized"] as? [String: Double])?["accuracy"] ?? 0) * n
            total.n += n
        }
        let v1 = (accuracy.json?["a"] as? [String: Any])?["value"] as? Double
        #expect(v1.map { abs($0 - merged.right / merged.n) < 1e-9 } == true, "\(String(describing: v1)) vs \(merged)")
        // A metric of another task, and an unknown one, are refused with the reason.
        let rmse = try await compare("rmse")
        #expect(rmse.status != 0 && rmse.stderr.contains("rmse does not apply to version a's task"), "\(rmse.stderr)")
        let unknown = try await compare("precision")
        #expect(unknown.status != 0 && unknown.stderr.contains("--metric must be one of"), "\(unknown.stderr)")
        // A range with no windows has nothing to compare.
        let empty = try await compare("accuracy", ["--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z"])
        #expect(empty.status != 0 && empty.stderr.contains("0 labelled rows"), "\(empty.stderr)")
    }

    @Test(
        "estimated performance: windows without labels get CBPE estimates calibrated on the labelled reference, beside the realized figures once labels come, across a restart"
    )
    func estimatedPerformance() async throws {
        var node = NodeProcess(arguments: ["--node-id", "cbpe"])
        try await node.start()
        let path = TestScratch.track(NSTemporaryDirectory() + "cbpe-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try """
        apiVersion: infranaut.io/v1
        kind: Model
        metadata: {name: scored}
        spec:
          task: binary-classification
          columns: {prediction: score, label: is_fraud}
          features:
            - {name: f0, type: numeric}
            - {name: region, type: categorical}
          window: {size: 1h, lateness: 0}
          reference: {from: upload}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let applied = try await runCLI(["apply", "-f", path, "--node", node.address])
        #expect(applied.status == 0, "\(applied.stderr)")

        // Scores that are calibrated probabilities: a row's label is 1 with probability its score.
        var random = SplitMix64(seed: 1130)
        func rows(_ n: Int, skew: Double) -> (scores: [Double], labels: [Double]) {
            calibratedRows(n, skew: skew, using: &random)
        }
        // The labelled reference: 4,000 uniform scores. Hour 0: 3,000 scores, no labels. Hour 1:
        // 3,000 scores skewed low (the inputs drifted), all labelled inline. Hour 2 closes hour 1.
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 4) * hour
        let reference = rows(4_000, skew: 1)
        var upload = scored(
            key: "ref", scores: reference.scores, labels: reference.labels, start: t0 - hour, span: hour)
        upload.ingest.batch.reference = true
        try await send(upload, through: node)
        let h0 = rows(3_000, skew: 1), h1 = rows(3_000, skew: 2.5)
        try await send(scored(key: "h0", scores: h0.scores, labels: nil, start: t0, span: hour), through: node)
        try await send(
            scored(key: "h1", scores: h1.scores, labels: h1.labels, start: t0 + hour, span: hour), through: node)
        try await send(scored(key: "h2", scores: [0.5], labels: nil, start: t0 + 2 * hour, span: 1), through: node)

        /// What the rows say: the expected accuracy at 0.5 given calibrated scores, and the
        /// realized one.
        func expectedAccuracy(_ s: [Double]) -> Double { s.map { max($0, 1 - $0) }.reduce(0, +) / Double(s.count) }
        func realizedAccuracy(_ r: (scores: [Double], labels: [Double])) -> Double {
            Double(zip(r.scores, r.labels).filter { ($0 >= 0.5) == ($1 == 1) }.count) / Double(r.scores.count)
        }
        func performance(_ listed: [[String: Any]]?, hourStart: Int64) -> [String: Any]? {
            listed?.first { $0["start"] as? String == rfc3339Text(hourStart) && $0["segment"] == nil }?["performance"]
                as? [String: Any]
        }

        var listed = try await windows(node, model: "scored", ["--segment", "none"])
        // Hour 0: estimates only, near what the scores imply, with a band that holds it.
        let p0 = performance(listed, hourStart: t0)
        #expect(p0?["labelled_rows"] as? Int == 0 && (p0?["realized"] as? [String: Any])?.isEmpty ?? true)
        let a0 = try #require(estimate(p0, "accuracy"), "\(String(describing: p0))")
        let truth0 = expectedAccuracy(h0.scores)
        #expect(abs(a0.value - truth0) < 0.02 && a0.lower <= truth0 && truth0 <= a0.upper, "\(a0) vs \(truth0)")
        for metric in ["roc_auc", "precision", "recall", "f1"] { #expect(estimate(p0, metric) != nil, "\(metric)") }

        // Hour 1: the drift moved the estimate; realized and estimated side by side, the realized
        // accuracy inside the band.
        let p1 = performance(listed, hourStart: t0 + hour)
        #expect(p1?["labelled_rows"] as? Int == 3_000)
        let a1 = try #require(estimate(p1, "accuracy"))
        let realized1 = try #require((p1?["realized"] as? [String: Double])?["accuracy"])
        #expect(abs(realized1 - realizedAccuracy(h1)) < 1e-12)
        #expect(a1.lower <= realized1 && realized1 <= a1.upper, "\(a1) vs realized \(realized1)")
        #expect(abs(a1.value - expectedAccuracy(h1.scores)) < 0.02)
        #expect(a1.value - a0.value > 0.03, "skewed scores are more often right: \(a0.value) → \(a1.value)")

        // The text table shows both.
        let table = try await runCLI(["windows", "--node", node.address, "--model", "scored"])
        #expect(table.stdout.contains("(est "), "\(table.stdout)")

        // The closed windows' estimates are stored with their results: the same after kill -9.
        node.kill()
        node = NodeProcess(dataDirectory: node.dataDirectory, arguments: ["--node-id", "cbpe"])
        try await node.start()
        listed = try await windows(node, model: "scored", ["--segment", "none"])
        #expect(estimate(performance(listed, hourStart: t0), "accuracy")?.value == a0.value)
        let auc1 = try #require(estimate(p1, "roc_auc"))
        #expect(estimate(performance(listed, hourStart: t0 + hour), "roc_auc")?.value == auc1.value)
        // The restarted node still calibrates with the reference's labelled scores: a new hour,
        // unlabelled, closed by a row an hour later, is estimated.
        let h3 = rows(2_000, skew: 1)
        try await send(
            scored(key: "h3", scores: h3.scores, labels: nil, start: t0 + 3 * hour, span: hour), through: node)
        try await send(scored(key: "h4", scores: [0.5], labels: nil, start: t0 + 4 * hour, span: 1), through: node)
        listed = try await windows(node, model: "scored", ["--segment", "none"])
        let a3 = try #require(estimate(performance(listed, hourStart: t0 + 3 * hour), "accuracy"))
        let truth3 = expectedAccuracy(h3.scores)
        #expect(abs(a3.value - truth3) < 0.025 && a3.lower <= truth3 && truth3 <= a3.upper, "\(a3) vs \(truth3)")
    }

    @Test("explain ranks the segment that holds the errors first and flags a feature whose attributions shifted")
    func explainWindow() async throws {
        let node = NodeProcess(arguments: ["--node-id", "why"])
        try await node.start()
        let spec = TestScratch.track(NSTemporaryDirectory() + "why-\(UInt64.random(in: 0...UInt64.max)).yaml")
        try """
        apiVersion: infranaut.io/v1
        kind: Model
        metadata: {name: why}
        spec:
          task: binary-classification
          columns: {timestamp: ts, prediction: score, label: is_fraud}
          features:
            - {name: f0, type: numeric}
            - {name: region, type: categorical}
          segments: [region]
          window: {size: 1h, lateness: 0}
          reference: {from: upload}
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        #expect(try await runCLI(["apply", "-f", spec, "--node", node.address]).status == 0)

        // Reference: right 95% of the time, f0's attributions small. Hour 0: region a (three rows
        // in four) always right, region b a coin toss; the attributions of f0 three times as large.
        var random = SplitMix64(seed: 7)
        func uniform() -> Double { Double.random(in: 0..<1, using: &random) }
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 3) * hour
        func csv(_ rows: Int, start: Int64, shap: Double, reference: Bool) -> String {
            var lines = ["ts,f0,region,score,is_fraud,shap.f0"]
            for i in 0..<rows {
                let region = i % 4 == 0 ? "b" : "a"
                let s = uniform()
                // The reference is right 95% of the time (a perfect one has no sampling error).
                let right = reference ? uniform() >= 0.05 : region == "a" || uniform() < 0.5
                let y = (s >= 0.5) == right ? 1 : 0
                lines.append("\(start + Int64(i) * 1000),\(uniform()),\(region),\(s),\(y),\(shap * (uniform() - 0.5))")
            }
            return lines.joined(separator: "\n") + "\n"
        }
        for (name, text, extra) in [
            ("ref", csv(2_000, start: t0 - hour, shap: 0.2, reference: true), ["--reference"]),
            ("h0", csv(2_000, start: t0, shap: 0.6, reference: false) + "\(t0 + hour),0.5,a,0.5,1,0\n", []),
        ] {
            let path = TestScratch.track(
                NSTemporaryDirectory() + "why-\(name)-\(UInt64.random(in: 0...UInt64.max)).csv")
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let pushed = try await runCLI(
                [
                    "push", "--node", node.address, "--model", "why", "--file", path, "--time-column", "ts",
                    "--prediction-column", "score", "--label-column", "is_fraud",
                ] + extra)
            #expect(pushed.status == 0, "\(pushed.stderr)")
        }

        let run = try await runCLI(["explain", "--node", node.address, "--model", "why", "--window", "\(t0)", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let segments = try #require(answer["segments"] as? [[String: Any]])
        #expect(segments.first?["value"] as? String == "b", "\(segments)")
        #expect(
            (segments.first?["error_share"] as? Double ?? 0) > 0.95 && (segments.first?["lift"] as? Double ?? 0) > 3)
        #expect(answer["segment_basis"] as? String == "realized accuracy")
        let features = try #require(answer["features"] as? [[String: Any]])
        let f0 = try #require(features.first { $0["name"] as? String == "f0" })
        #expect(f0["attribution_shifted"] as? Bool == true, "\(f0)")
        #expect((f0["attribution_change"] as? Double ?? 0) > 1, "mean |attribution| tripled: \(f0)")
        #expect(features.first?["name"] as? String == "f0", "the flagged feature comes first: \(features)")
        let performance = try #require(answer["performance"] as? [String: Any])
        #expect(performance["metric"] as? String == "roc_auc" && performance["estimated"] as? Bool == false)
        #expect(performance["dropped"] as? Bool == true, "half of region b's rows are wrong: \(performance)")

        // A window that does not exist is a clear error.
        let none = try await runCLI(["explain", "--node", node.address, "--model", "why", "--window", "0"])
        #expect(none.status != 0 && none.stderr.contains("no window"), "\(none.stderr)")
    }
}

/// The alerts `infranaut alerts` lists, as JSON.
private func alerts(_ node: NodeProcess, _ extra: [String] = []) async throws -> [[String: Any]]? {
    try await listed("alerts", ["alerts", "--node", node.address, "--json"] + extra)
}

/// How many times each alert event id is in `node`'s inbox (`infranaut events`).
private func alertEvents(_ node: NodeProcess) async throws -> [String: Int] {
    let run = try await runCLI(["events", "--node", node.address, "--json", "--limit", "10000"])
    guard run.status == 0,
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
        let events = object["events"] as? [[String: Any]]
    else { return [:] }
    var counts: [String: Int] = [:]
    for event in events where event["kind"] as? String == "alert" {
        counts[event["id"] as? String ?? "", default: 0] += 1
    }
    return counts
}

@Suite("alerts on real nodes", .serialized, .timeLimit(.minutes(4)))
struct AlertProcessTests {
    @Test(
        "a drifted window fires its rule's alert, the alert survives kill -9 of the primary unchanged, and a clean window resolves it"
    )
    func driftFiresAndResolves() async throws {
        let nodes = try await startCluster(["a1", "a2", "a3"])
        try await apply(
            """
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: alerted}
            spec:
              features:
                - {name: f0, type: numeric}
                - {name: f1, type: numeric}
                - {name: f2, type: numeric}
              window: {size: 1h, lateness: 0}
              reference: {from: upload}
              alerts:
                - name: dataset-drift
                  metric: drift_share
                  condition: {above: 0.3}
                  for: 1
                  severity: warning
                  labels: {team: risk}
                  summary: "{{model}}: {{value}} of the features drift"
                  notify: [ops-webhook]
            """, through: nodes[0])

        // The reference, a clean hour 0, hour 1 with f1 shifted by 3σ (one feature in three
        // drifts), and the first row of hour 2, which closes hour 1.
        let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 5) * hour
        try await send(
            batch(model: "alerted", key: "ref", rows: 2_000, start: t0 - hour, span: hour, seed: 1, reference: true),
            through: nodes[0])
        try await send(batch(model: "alerted", key: "h0", rows: 500, start: t0, span: hour, seed: 2), through: nodes[0])
        try await send(
            batch(model: "alerted", key: "h1", rows: 500, start: t0 + hour, span: hour, shift: 3, seed: 3),
            through: nodes[0])
        try await send(
            batch(model: "alerted", key: "h2a", rows: 1, start: t0 + 2 * hour, span: 1, seed: 4), through: nodes[0])

        let firing = try #require(try await alerts(nodes[1]))
        #expect(firing.count == 1, "\(firing)")
        let alert = try #require(firing.first)
        #expect(alert["model"] as? String == "alerted" && alert["rule"] as? String == "dataset-drift")
        #expect(alert["state"] as? String == "firing" && alert["severity"] as? String == "warning")
        #expect(
            alert["window_start"] as? String == rfc3339Text(t0 + hour)
                && alert["since"] as? String == rfc3339Text(t0 + hour))
        let value = try #require(alert["value"] as? Double)
        #expect(abs(value - 1.0 / 3) < 1e-9 && alert["threshold"] as? Double == 0.3, "\(alert)")
        #expect(alert["summary"] as? String == "alerted: 0.3333 of the features drift", "\(alert)")
        #expect(
            alert["labels"] as? [String: String] == ["team": "risk"] && alert["notify"] as? [String] == ["ops-webhook"])
        #expect(alert["sequence"] as? Int == 1)
        let fingerprint = try #require(alert["fingerprint"] as? String)
        // The windows agree: hour 1's drift share is the value.
        let listed = try await windows(nodes[1], model: "alerted", ["--segment", "none"])
        #expect(
            (listed?.last?["drift_share"] as? Double).map { abs($0 - value) < 1e-9 } == true,
            "\(String(describing: listed))")

        // The change reaches every coordinator (each node is one) once, as event alert/<fp>/1.
        let firedEvent = "alert/\(fingerprint)/1"
        let everywhere = try await eventually(within: .seconds(30)) {
            for node in nodes where try await alertEvents(node) != [firedEvent: 1] { return false }
            return true
        }
        let seenFirst = try await alertEvents(nodes[0])
        #expect(everywhere != nil, "\(seenFirst)")

        // The primary dies: a survivor lists the same alert, fired once.
        let roles = try await replicaRoles(of: "alerted", asking: nodes[0].address)
        let primary = try #require(nodes.first { $0.address == roles.primary })
        primary.kill(SIGKILL)
        let survivor = try #require(nodes.first { $0 !== primary })
        let after = try #require(try await alerts(survivor, ["--model", "alerted"]))
        #expect(after.count == 1 && after.first?["fingerprint"] as? String == fingerprint, "\(after)")
        #expect(after.first?["state"] as? String == "firing" && after.first?["sequence"] as? Int == 1)

        // Hour 2 is clean; a row of hour 3 closes it: resolved, and only listed when asked.
        try await send(
            batch(model: "alerted", key: "h2", rows: 500, start: t0 + 2 * hour + 1, span: hour - 1, seed: 5),
            through: survivor)
        try await send(
            batch(model: "alerted", key: "h3", rows: 1, start: t0 + 3 * hour, span: 1, seed: 6), through: survivor)
        let active = try await alerts(survivor)
        #expect(active?.isEmpty == true, "\(String(describing: active))")
        let resolved = try #require(try await alerts(survivor, ["--include-resolved"]))
        #expect(resolved.count == 1 && resolved.first?["state"] as? String == "resolved", "\(resolved)")
        #expect(resolved.first?["fingerprint"] as? String == fingerprint && resolved.first?["sequence"] as? Int == 2)
        #expect(resolved.first?["window_start"] as? String == rfc3339Text(t0 + 2 * hour))
        // The survivors' coordinators get the resolution once, and the firing not again.
        let bothOnce = [firedEvent: 1, "alert/\(fingerprint)/2": 1]
        let delivered = try await eventually(within: .seconds(30)) {
            for node in nodes where node !== primary {
                if try await alertEvents(node) != bothOnce { return false }
            }
            return true
        }
        let seenSurvivor = try await alertEvents(survivor)
        #expect(delivered != nil, "\(seenSurvivor)")
        let onlyFiring = try await alerts(survivor, ["--state", "firing"])
        #expect(onlyFiring?.isEmpty == true)
        let unknown = try await runCLI(["alerts", "--node", survivor.address, "--model", "nobody"])
        #expect(unknown.status != 0 && unknown.stderr.contains("does not exist"), "\(unknown.stderr)")
    }

    @Test(
        "traffic stopping: the rule fires once no rows came for two windows (models parking after 1 s idle), notifies, and rows resolve it at once"
    )
    func trafficStoppedFiresAndResolves() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        // Models park after 1 s idle: the tick that judges the quiet model must load it.
        let nodes = try await startCluster(["i1", "i2", "i3"], arguments: ["--park-idle-models-after-s", "1"])
        try await apply(
            webhookChannel(receiver.url)
                + """
                    apiVersion: infranaut.io/v1
                    kind: Model
                    metadata: {name: stopping}
                    spec:
                      features: [{name: f0, type: numeric}, {name: f1, type: numeric}, {name: f2, type: numeric}]
                      window: {size: 2s, lateness: 0}
                      alerts:
                        - {name: traffic-stopped, metric: idle_windows, condition: {above: 2}, notify: [ops-webhook]}
                """, through: nodes[0])
        let sent = Int64(Date().timeIntervalSince1970 * 1000)
        try await send(
            batch(model: "stopping", key: "b1", rows: 10, start: sent, span: 100, seed: 1), through: nodes[1])

        // Nothing more comes: after 4 s without rows the alert fires and the notice goes out.
        let fired = try await eventually(within: .seconds(60)) {
            (try await alerts(nodes[2], ["--model", "stopping"]))?.contains {
                $0["rule"] as? String == "traffic-stopped" && $0["state"] as? String == "firing"
            } == true
        }
        #expect(fired != nil)
        let firing = try #require(try await alerts(nodes[2], ["--model", "stopping"])?.first)
        #expect((firing["value"] as? Double ?? 0) > 2 && firing["metric"] as? String == "idle_windows", "\(firing)")
        let noticed = try await eventually(within: .seconds(30)) { receiver.accepted.count >= 1 }
        #expect(noticed != nil)
        let notice = try #require(receiver.accepted.first?.json)
        let labels = (notice["alerts"] as? [[String: Any]])?.first?["labels"] as? [String: String]
        #expect(notice["status"] as? String == "firing" && labels?["alertname"] == "traffic-stopped", "\(notice)")

        // Rows again: resolved at once (not at the next window's close), and the resolution is sent.
        let again = Int64(Date().timeIntervalSince1970 * 1000)
        try await send(
            batch(model: "stopping", key: "b2", rows: 10, start: again, span: 100, seed: 2), through: nodes[0])
        let resolved = try await eventually(within: .seconds(30)) {
            receiver.accepted.contains { $0.json?["status"] as? String == "resolved" }
        }
        #expect(resolved != nil, "\(receiver.accepted.map { String(decoding: $0.body, as: UTF8.self) })")
        #expect(receiver.accepted.count == 2)
    }
}

/// Each coordinator's channel table, as `infranaut channels --json` prints it.
private func channels(_ node: NodeProcess) async throws -> [String: Any]? {
    let run = try await runCLI(["channels", "--node", node.address, "--json"])
    guard run.status == 0 else { return nil }
    return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
}

/// The silences `infranaut silences --json` lists on `node`.
private func listedSilences(_ node: NodeProcess) async throws -> [[String: Any]]? {
    try await listed("silences", ["silences", "--node", node.address, "--json"])
}

/// The webhook channel "ops-webhook" to `url` (with `fields` in its spec), and a document break.
private func webhookChannel(_ url: String, fields: String = "") -> String {
    """
    apiVersion: infranaut.io/v1
    kind: NotificationChannel
    metadata: {name: ops-webhook}
    spec: {type: webhook, url: "\(url)"\(fields.isEmpty ? "" : ", " + fields)}
    ---

    """
}

/// A webhook channel "ops-webhook" to `webhook` (with `channelFields` in its spec) and `model`,
/// whose dataset-drift rule notifies it.
private func driftAlertedModel(_ model: String, webhook: String, channelFields: String = "") -> String {
    webhookChannel(webhook, fields: channelFields)
        + """
        apiVersion: infranaut.io/v1
        kind: Model
        metadata: {name: \(model)}
        spec:
          features: [{name: f0, type: numeric}, {name: f1, type: numeric}, {name: f2, type: numeric}]
          window: {size: 1h, lateness: 0}
          reference: {from: upload}
          alerts:
            - {name: dataset-drift, metric: drift_share, condition: {above: 0.1}, notify: [ops-webhook]}
        """
}

/// Five hours ago: a reference hour, a drifted hour `t0` (f1 shifted by 3) and the first row of the
/// next hour, which closes it. Returns `t0`.
private func pushDriftedHour(model: String, through node: NodeProcess, closeThrough closer: NodeProcess? = nil)
    async throws -> Int64
{
    let t0 = (Int64(Date().timeIntervalSince1970 * 1000) / hour - 5) * hour
    try await send(
        batch(model: model, key: "ref", rows: 2_000, start: t0 - hour, span: hour, seed: 1, reference: true),
        through: node)
    try await send(batch(model: model, key: "h0", rows: 500, start: t0, span: hour, shift: 3, seed: 2), through: node)
    try await send(
        batch(model: model, key: "h1a", rows: 1, start: t0 + hour, span: 1, seed: 3), through: closer ?? node)
    return t0
}

@Suite("notifications on real nodes", .serialized, .timeLimit(.minutes(4)))
struct NotificationProcessTests {
    @Test(
        "a drifted window yields one firing webhook notice and a clean one one resolved notice, in the Alertmanager format, through retries and the sending coordinator's kill -9"
    )
    func webhookOnceEach() async throws {
        // The receiver refuses the first two requests: the notice is retried and counted.
        let receiver = try HTTPReceiver(failFirst: 2)
        defer { receiver.close() }
        let nodes = try await startCluster(["c1", "c2", "c3"])
        // The issue's first example, as users will copy it from the docs.
        try await apply(
            """
            apiVersion: infranaut.io/v1
            kind: NotificationChannel
            metadata: {name: ops-webhook}
            spec: {type: webhook, url: "\(receiver.url)"}
            ---
            apiVersion: infranaut.io/v1
            kind: Model
            metadata: {name: fraud-v1}
            spec:
              features:
                - {name: f0, type: numeric}
                - {name: f1, type: numeric}
                - {name: f2, type: numeric}
              window: {size: 1h, lateness: 0}
              reference: {from: upload}
              alerts:
                - name: dataset-drift
                  metric: drift_share
                  condition: {above: 0.1}
                  for: 1
                  severity: warning
                  notify: [ops-webhook]
            """, through: nodes[1])

        // Reference, a drifted hour 0, and the first row of hour 1, which closes it.
        let t0 = try await pushDriftedHour(model: "fraud-v1", through: nodes[1])

        // One notice accepted, after two refused attempts with the same dedup key.
        let fired = try await eventually(within: .seconds(60)) { receiver.accepted.count >= 1 }
        #expect(fired != nil, "\(receiver.requests.map(\.answered))")
        let notice = try #require(receiver.accepted.first?.json)
        #expect(notice["version"] as? String == "4" && notice["status"] as? String == "firing", "\(notice)")
        #expect(notice["receiver"] as? String == "ops-webhook")
        let sent = try #require((notice["alerts"] as? [[String: Any]])?.first)
        let labels = sent["labels"] as? [String: String]
        #expect(
            labels?["alertname"] == "dataset-drift" && labels?["model"] == "fraud-v1"
                && labels?["severity"] == "warning")
        #expect(sent["status"] as? String == "firing" && sent["endsAt"] as? String == "0001-01-01T00:00:00Z")
        #expect(sent["startsAt"] as? String == rfc3339Text(t0), "\(sent)")
        let fingerprint = try #require(sent["fingerprint"] as? String)
        #expect((sent["annotations"] as? [String: String])?["summary"]?.contains("fraud-v1") == true)
        #expect(
            (sent["annotations"] as? [String: String])?["hints"]?.hasPrefix("flagged: ") == true
                && (sent["annotations"] as? [String: String])?["hints"]?.contains("f1") == true, "\(sent)")
        let keys = Set(receiver.requests.map { $0.headers["idempotency-key"] ?? "" })
        #expect(
            receiver.requests.count == 3 && keys.count == 1 && keys.first != "", "\(receiver.requests.map(\.headers))")
        #expect(notice["groupKey"] as? String == keys.first)

        // Every coordinator holds the record of the send: none sends it again.
        let record = "notified/\(fingerprint)/1/ops-webhook"
        func recorded(_ node: NodeProcess) async throws -> Bool {
            let run = try await runCLI(["events", "--node", node.address, "--json", "--limit", "10000"])
            return run.status == 0 && run.stdout.contains("\"\(record)\"")
        }
        let everywhere = try await eventually(within: .seconds(30)) {
            for node in nodes where !(try await recorded(node)) { return false }
            return true
        }
        #expect(everywhere != nil)
        #expect(receiver.accepted.count == 1)
        let sender = try #require(try await channels(nodes[0]))
        #expect(sender["sending"] as? Bool == true, "c1 is the lowest live coordinator: \(sender)")
        let counted = (sender["channels"] as? [[String: Any]])?.first
        #expect(
            counted?["sent"] as? Int == 1 && counted?["failed_attempts"] as? Int == 2, "\(String(describing: counted))")

        // The sending coordinator dies; a clean hour 1 closes: the next lowest sends the one
        // resolved notice.
        nodes[0].kill(SIGKILL)
        let next = nodes[1]
        try await send(
            batch(model: "fraud-v1", key: "h1", rows: 500, start: t0 + hour + 1, span: hour - 1, seed: 4), through: next
        )
        try await send(
            batch(model: "fraud-v1", key: "h2a", rows: 1, start: t0 + 2 * hour, span: 1, seed: 5), through: next)
        let resolvedRecord = "notified/\(fingerprint)/2/ops-webhook"
        let resolved = try await eventually(within: .seconds(60)) {
            guard receiver.accepted.count >= 2 else { return false }
            let run = try await runCLI(["events", "--node", nodes[2].address, "--json", "--limit", "10000"])
            return run.stdout.contains("\"\(resolvedRecord)\"")
        }
        #expect(resolved != nil, "\(receiver.accepted.map { String(decoding: $0.body, as: UTF8.self) })")
        #expect(receiver.accepted.count == 2)
        let second = try #require(receiver.accepted.last?.json)
        #expect(second["status"] as? String == "resolved", "\(second)")
        let ended = try #require((second["alerts"] as? [[String: Any]])?.first)
        #expect(ended["fingerprint"] as? String == fingerprint && ended["endsAt"] as? String != "0001-01-01T00:00:00Z")
        let takenOver = try await channels(next)
        #expect(takenOver?["sending"] as? Bool == true, "\(String(describing: takenOver))")
    }

    @Test(
        "a firing alert is notified again each repeat interval, each repeat once and recorded on every coordinator, with the window's hints; the resolution ends them"
    )
    func repeatsWhileFiring() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        let nodes = try await startCluster(["p1", "p2", "p3"])
        try await apply(
            driftAlertedModel("nagging", webhook: receiver.url, channelFields: "repeat_interval: 2s"), through: nodes[1]
        )
        let t0 = try await pushDriftedHour(model: "nagging", through: nodes[1], closeThrough: nodes[2])

        // The firing notice, then at least two repeats.
        let repeated = try await eventually(within: .seconds(90)) { receiver.accepted.count >= 3 }
        #expect(repeated != nil, "\(receiver.requests.map { $0.headers["idempotency-key"] ?? "" })")
        let firstThree = Array(receiver.accepted.prefix(3))
        let keys = firstThree.map { $0.headers["idempotency-key"] ?? "" }
        #expect(!keys[0].isEmpty && !keys[0].contains("#"), "the change's own notice first: \(keys)")
        // Each later one is a repeat with a larger number (a busy sender may skip to the latest).
        let numbers = keys.dropFirst().compactMap { $0.split(separator: "#").last.flatMap { Int($0) } }
        #expect(numbers.count == 2 && numbers[0] >= 1 && numbers[1] > numbers[0], "\(keys)")
        #expect(Set(keys).count == keys.count)
        for notice in firstThree {
            let json = notice.json
            #expect(json?["status"] as? String == "firing", "\(String(describing: json))")
            let alert = (json?["alerts"] as? [[String: Any]])?.first
            // The hints of the window go with the notice: f1 is the feature that drifted.
            let hints = (alert?["annotations"] as? [String: String])?["hints"] ?? ""
            #expect(hints.hasPrefix("flagged: ") && hints.contains("f1"), "\(String(describing: alert))")
        }
        let fingerprint = try #require(
            ((firstThree[0].json?["alerts"] as? [[String: Any]])?.first?["fingerprint"]) as? String)

        // Every coordinator holds the record of the first repeat: no other sends it again.
        let record = "notified/\(fingerprint)/1/ops-webhook/\(numbers.first ?? 1)"
        let everywhere = try await eventually(within: .seconds(30)) {
            for node in nodes {
                let run = try await runCLI(["events", "--node", node.address, "--json", "--limit", "10000"])
                if run.status != 0 || !run.stdout.contains("\"\(record)\"") { return false }
            }
            return true
        }
        #expect(everywhere != nil, "\(record) is not on every coordinator")
        let counted = (try await channels(nodes[0])?["channels"] as? [[String: Any]])?.first
        #expect((counted?["repeats"] as? Int ?? 0) >= 2, "\(String(describing: counted))")
        #expect(counted?["repeat_interval"] as? String == "2s")

        // `alerts` lists the same hints.
        let listed = try await runCLI(["alerts", "--node", nodes[2].address, "--model", "nagging", "--json"])
        let alerts = (try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [String: Any])?["alerts"]
        let hinted = (alerts as? [[String: Any]])?.first?["hints"] as? [String: Any]
        let features = (hinted?["features"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(features?.contains("f1") == true, "\(listed.stdout)")

        // A clean hour resolves it: the resolved notice comes, and the repeats end with it.
        try await send(
            batch(model: "nagging", key: "h1", rows: 500, start: t0 + hour + 1, span: hour - 1, seed: 4),
            through: nodes[1])
        try await send(
            batch(model: "nagging", key: "h2a", rows: 1, start: t0 + 2 * hour, span: 1, seed: 5), through: nodes[1])
        let resolved = try await eventually(within: .seconds(60)) {
            receiver.accepted.contains { $0.json?["status"] as? String == "resolved" }
        }
        #expect(resolved != nil)
        let all = receiver.accepted.map { $0.headers["idempotency-key"] ?? "" }
        #expect(Set(all).count == all.count, "no notice twice: \(all)")
    }

    @Test(
        "a coordinator that joins later copies the channels, silences and sends it missed, and as the lowest sends the next notice, once"
    )
    func joinerCatchesUp() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        let nodes = try await startCluster(["n2", "n3", "n4"])
        try await apply(driftAlertedModel("joined", webhook: receiver.url), through: nodes[0])
        let silenced = try await runCLI([
            "silence", "--node", nodes[1].address, "--model", "elsewhere", "--for", "2h", "--comment", "unrelated",
            "--json",
        ])
        #expect(silenced.status == 0, "\(silenced.stderr)")
        let t0 = try await pushDriftedHour(model: "joined", through: nodes[1])
        let fired = try await eventually(within: .seconds(60)) { receiver.accepted.count >= 1 }
        #expect(fired != nil)

        // n1 joins: it sorts first, so once it has caught up it is the one that sends.
        let joiner = NodeProcess(arguments: ["--node-id", "n1", "--seed", nodes[0].clusterAddress])
        try await joiner.start()
        let leads = try await eventually(within: .seconds(60)) {
            let known = try await channels(joiner)
            let names = (known?["channels"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            return known?["sending"] as? Bool == true && names == ["ops-webhook"]
        }
        #expect(leads != nil, "the joiner never learned the channel or never took over sending")
        let silences = try await listedSilences(joiner) ?? []
        #expect(silences.contains { $0["model"] as? String == "elsewhere" }, "\(silences)")
        #expect(receiver.accepted.count == 1, "the firing notice was not sent again by the joiner")

        // The clean hour resolves the alert: the joiner sends the resolved notice, once.
        try await send(
            batch(model: "joined", key: "h1", rows: 500, start: t0 + hour + 1, span: hour - 1, seed: 4),
            through: nodes[2])
        try await send(
            batch(model: "joined", key: "h2a", rows: 1, start: t0 + 2 * hour, span: 1, seed: 5), through: nodes[2])
        let resolved = try await eventually(within: .seconds(60)) { receiver.accepted.count >= 2 }
        #expect(resolved != nil)
        #expect(receiver.accepted.count == 2 && receiver.accepted.last?.json?["status"] as? String == "resolved")
        let counted = (try await channels(joiner)?["channels"] as? [[String: Any]])?.first
        #expect(counted?["sent"] as? Int == 1, "the joiner sent the resolution: \(String(describing: counted))")
    }

    @Test(
        "cluster defaults: nodes started with --alert-defaults give a model without rules the table's rule, which fires and notifies; a bad table keeps the node from starting"
    )
    func clusterDefaultsNotify() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("defaults-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let table = directory.appendingPathComponent("alert-defaults.yaml").path
        try """
        apiVersion: infranaut.io/v1
        kind: AlertDefaults
        spec:
          alerts:
            - {name: team-drift, metric: drift_share, condition: {above: 0.1}, severity: critical, notify: [ops-webhook]}
        """.write(toFile: table, atomically: true, encoding: .utf8)
        let bad = directory.appendingPathComponent("bad.yaml").path
        try """
        apiVersion: infranaut.io/v1
        kind: AlertDefaults
        spec:
          alerts:
            - {name: broken, metric: nope, condition: {above: 1}}
        """.write(toFile: bad, atomically: true, encoding: .utf8)
        let refused = try await runCLI([
            "start", "--alert-defaults", bad, "--data-dir", directory.appendingPathComponent("never").path,
        ])
        #expect(
            refused.status != 0 && refused.stderr.contains("bad.yaml:5: spec.alerts[0].metric"), "\(refused.stderr)")

        let nodes = try await startCluster(["d1", "d2", "d3"], arguments: ["--alert-defaults", table])
        try await apply(
            webhookChannel(receiver.url)
                + """
                apiVersion: infranaut.io/v1
                kind: Model
                metadata: {name: inherits}
                spec:
                  features: [{name: f0, type: numeric}, {name: f1, type: numeric}, {name: f2, type: numeric}]
                  window: {size: 1h, lateness: 0}
                  reference: {from: upload}
                """, through: nodes[1])
        _ = try await pushDriftedHour(model: "inherits", through: nodes[2])
        let fired = try await eventually(within: .seconds(60)) { receiver.accepted.count >= 1 }
        #expect(fired != nil)
        let alert = (receiver.accepted.first?.json?["alerts"] as? [[String: Any]])?.first
        let labels = alert?["labels"] as? [String: String]
        #expect(
            labels?["alertname"] == "team-drift" && labels?["severity"] == "critical", "\(String(describing: alert))")
        // The built-in defaults are not the cluster's any more.
        let listed = try await alerts(nodes[0], ["--model", "inherits"]) ?? []
        #expect(listed.map { $0["rule"] as? String } == ["team-drift"], "\(listed)")
    }

    @Test("a silenced alert changes state but sends nothing, on every coordinator; silences list and end")
    func silencedSendsNothing() async throws {
        let receiver = try HTTPReceiver()
        defer { receiver.close() }
        let nodes = try await startCluster(["q1", "q2", "q3"])
        try await apply(driftAlertedModel("quiet", webhook: receiver.url), through: nodes[0])
        let made = try await runCLI([
            "silence", "--node", nodes[2].address, "--model", "quiet", "--rule", "dataset-drift", "--for", "2h",
            "--comment", "planned retraining", "--json",
        ])
        #expect(made.status == 0, "\(made.stderr)")
        let id = try #require(
            (try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as? [String: Any])?["id"] as? String)
        func listed(_ node: NodeProcess) async throws -> [[String: Any]] {
            try await listedSilences(node) ?? []
        }
        let known = try await eventually(within: .seconds(30)) {
            for node in nodes where !(try await listed(node)).contains(where: { $0["id"] as? String == id }) {
                return false
            }
            return true
        }
        #expect(known != nil)

        _ = try await pushDriftedHour(model: "quiet", through: nodes[0])

        // The alert fires, and every coordinator records its change as handled (silenced).
        let firing = try await alerts(nodes[1])
        let fingerprint = try #require(firing?.first?["fingerprint"] as? String, "\(String(describing: firing))")
        #expect(firing?.first?["state"] as? String == "firing")
        let record = "notified/\(fingerprint)/1/ops-webhook"
        let settled = try await eventually(within: .seconds(30)) {
            for node in nodes {
                let run = try await runCLI(["events", "--node", node.address, "--json", "--limit", "10000"])
                if !run.stdout.contains("\"\(record)\"") { return false }
            }
            return true
        }
        #expect(settled != nil)
        #expect(receiver.requests.isEmpty, "\(receiver.requests.count) requests")
        let counted = (try await channels(nodes[0])?["channels"] as? [[String: Any]])?.first
        #expect(counted?["silenced"] as? Int == 1 && counted?["sent"] as? Int == 0, "\(String(describing: counted))")

        // Ended now: listed with its end, and a wrong id is refused.
        let ended = try await runCLI(["silences", "--node", nodes[1].address, "--expire", id])
        #expect(ended.status == 0, "\(ended.stderr)")
        let wrong = try await runCLI(["silences", "--node", nodes[1].address, "--expire", "0000000000000000"])
        #expect(wrong.status != 0 && wrong.stderr.contains("no silence"), "\(wrong.stderr)")
    }
}
