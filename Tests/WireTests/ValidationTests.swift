import Testing
import Wire

private func valid() -> Infranaut_V1_IngestRequest {
    .with {
        $0.idempotencyKey = "k"
        $0.batch = .with {
            $0.modelID = "m"
            $0.rowCount = 2
            $0.columns = [
                .with {
                    $0.name = "a"
                    $0.doubles = .with { $0.values = [1, 2] }
                },
                .with {
                    $0.name = "b"
                    $0.strings = .with {
                        $0.values = ["x", ""]
                        $0.missingRows = [1]
                    }
                },
            ]
        }
    }
}

@Suite("ingest validation")
struct ValidationTests {
    @Test("a well-formed request passes")
    func accepts() throws {
        try valid().validate()
    }

    @Test("each structural problem is refused with a message naming the field")
    func refuses() {
        let cases: [(String, (inout Infranaut_V1_IngestRequest) -> Void)] = [
            ("idempotency", { $0.idempotencyKey = "" }),
            ("model_id", { $0.batch.modelID = "" }),
            ("row_count is 0", { $0.batch.rowCount = 0 }),
            ("equal length", { $0.batch.columns[0].doubles.values = [1] }),
            ("no values of a known type", { $0.batch.columns[1].values = nil }),
            ("appears more than once", { $0.batch.columns[1].name = "a" }),
            ("missing_rows lists row 5", { $0.batch.columns[1].strings.missingRows = [5] }),
            ("prediction_ids has 1", { $0.batch.predictionIds = ["only-one"] }),
            ("event_time_unix_ms has 3", { $0.batch.eventTimeUnixMs = [1, 2, 3] }),
            // Times whose window arithmetic would overflow stop at the door, not in every replica.
            ("event_time_unix_ms[0] is -9223372036854775808", { $0.batch.eventTimeUnixMs = [.min, 5] }),
            ("event_time_unix_ms[1] is 9223372036854775807", { $0.batch.eventTimeUnixMs = [5, .max] }),
            ("event_time_unix_ms[0] is -1", { $0.batch.eventTimeUnixMs = [-1, 5] }),
            ("batch.version is 129 bytes", { $0.batch.version = String(repeating: "v", count: 129) }),
            ("label_column names", { $0.batch.labelColumn = "nope" }),
            ("name is empty", { $0.batch.columns[0].name = "" }),
        ]
        for (expected, mutate) in cases {
            var request = valid()
            mutate(&request)
            do {
                try request.validate()
                Issue.record("accepted a request with a problem: \(expected)")
            } catch {
                #expect(error.message.contains(expected), "message: \(error.message)")
                #expect(error.code == .invalidArgument)
            }
        }
    }

    @Test("limits answer TOO_LARGE")
    func limits() {
        var request = valid()
        var limits = IngestLimits()
        limits.maxRows = 1
        #expect(throws: WireError(.tooLarge, "batch.row_count is 2; the limit is 1 rows per batch")) {
            try request.validate(limits)
        }
        request.idempotencyKey = String(repeating: "k", count: 200)
        #expect(throws: WireError.self) { try request.validate() }
    }

    @Test("a batch of labels carries ids and one label column only, within its own row limit")
    func labelBatches() throws {
        func labels(_ change: (inout Infranaut_V1_IngestRequest) -> Void = { _ in }) -> Infranaut_V1_IngestRequest {
            var request = valid()
            request.batch.columns = [request.batch.columns[0]]
            request.batch.labels = true
            request.batch.labelColumn = "a"
            request.batch.predictionIds = ["p1", "p2"]
            change(&request)
            return request
        }
        try labels().validate()
        let cases: [(String, (inout Infranaut_V1_IngestRequest) -> Void)] = [
            ("prediction_ids is empty", { $0.batch.predictionIds = [] }),
            ("prediction_ids[1] is empty", { $0.batch.predictionIds = ["p1", ""] }),
            ("label_column is empty", { $0.batch.labelColumn = "" }),
            ("carries only the label column", { $0.batch.columns.append(valid().batch.columns[1]) }),
            ("carries only the label column", { $0.batch.predictionColumn = "a" }),
            ("batch.labels and batch.reference", { $0.batch.reference = true }),
        ]
        for (expected, mutate) in cases {
            do {
                try labels(mutate).validate()
                Issue.record("accepted a batch of labels with a problem: \(expected)")
            } catch {
                #expect(error.message.contains(expected), "message: \(error.message)")
                #expect(error.code == .invalidArgument)
            }
        }
        var limits = IngestLimits()
        limits.maxLabelRows = 1
        #expect(
            throws: WireError(
                .tooLarge, "batch.labels is set and batch.row_count is 2; the limit is 1 labels per batch")
        ) { try labels().validate(limits) }
    }
}
