import Testing

@testable import Actors

@Suite("node metrics")
struct NodeMetricsTests {
    func series(_ metrics: NodeMetrics, _ name: String) -> [String] {
        String(decoding: metrics.text(), as: UTF8.self).split(separator: "\n")
            .filter { $0.hasPrefix(name + "{") }.map(String.init)
    }

    @Test(
        "per-model series are kept for the 50 models with the most rows; a model that leaves the top loses its series")
    func cardinalityGuard() {
        let metrics = NodeMetrics()
        let many = (0..<60).map { (model: "m\($0)", rows: UInt64($0 * 10), driftShare: Double?.some(0.1), firing: 0) }
        metrics.setModels(many)
        let rows = series(metrics, "infranaut_model_rows")
        #expect(rows.count == 50)
        #expect(rows.contains(#"infranaut_model_rows{model="m59"} 590.0"#), "\(rows.prefix(3))")
        #expect(!rows.contains { $0.contains(#"model="m9""#) }, "the smallest ten are left out")
        // m59 stops: its series go with it.
        metrics.setModels(Array(many.prefix(59)))
        #expect(!series(metrics, "infranaut_model_rows").contains { $0.contains(#"model="m59""#) })
        #expect(!series(metrics, "infranaut_model_drift_share").contains { $0.contains(#"model="m59""#) })
        #expect(series(metrics, "infranaut_model_rows").count == 50)
    }

    @Test("totals kept elsewhere become counters that only grow")
    func advance() {
        let metrics = NodeMetrics()
        metrics.advance("infranaut_wal_groups_total", to: 5, help: "groups")
        metrics.advance("infranaut_wal_groups_total", to: 12, help: "groups")
        metrics.advance("infranaut_wal_groups_total", to: 3, help: "groups")
        let text = String(decoding: metrics.text(), as: UTF8.self)
        #expect(text.contains("infranaut_wal_groups_total 12"), "\(text)")
    }
}
