import Testing
import Wire

private func batch(rows: Int) -> Infranaut_V1_TelemetryBatch {
    .with {
        $0.modelID = "model-α"
        $0.rowCount = UInt32(rows)
        $0.predictionIds = (0..<rows).map { "p\($0)" }
        $0.columns = [
            .with {
                $0.name = "score"
                $0.doubles = .with { $0.values = (0..<rows).map { Double($0) / 7 } }
            },
            .with {
                $0.name = "city"
                $0.strings = .with {
                    $0.values = (0..<rows).map { "c\($0 % 5)" }
                    $0.missingRows = [0]
                }
            },
        ]
    }
}

@Suite("request framing")
struct FramingTests {
    @Test(
        "encodedIngest decodes to version 1, no hops, the key and the batch, and matches SwiftProtobuf's bytes",
        arguments: zip(["k", String(repeating: "k", count: 128)], [1, 2_000]))
    func encodedIngest(key: String, rows: Int) throws {
        let batch = batch(rows: rows)
        let bytes = Infranaut_V1_Request.encodedIngest(key: key, batchBytes: try batch.serializedBytes())

        let decoded = try Infranaut_V1_Request(serializedBytes: bytes)
        #expect(decoded.version == 1)
        #expect(decoded.hops == 0)
        guard case .ingest(let ingest) = decoded.body else {
            Issue.record("body is \(String(describing: decoded.body)), not ingest")
            return
        }
        #expect(ingest.idempotencyKey == key)
        #expect(ingest.batch == batch)
        #expect(decoded.unknownFields.data.isEmpty && ingest.unknownFields.data.isEmpty)

        let expected = Infranaut_V1_Request.with {
            $0.version = 1
            $0.ingest = .with {
                $0.idempotencyKey = key
                $0.batch = batch
            }
        }
        #expect(decoded == expected)
        #expect(bytes == (try expected.serializedBytes() as [UInt8]))
    }

    @Test("markingForwarded sets hops to 1 and leaves every other field as it was", arguments: [0, 1, 300])
    func markingForwarded(hops: UInt32) throws {
        let original = Infranaut_V1_Request.with {
            $0.version = 1
            $0.hops = hops
            $0.ingest = .with {
                $0.idempotencyKey = "key"
                $0.batch = batch(rows: 3)
            }
        }
        let decoded = try Infranaut_V1_Request(
            serializedBytes: Infranaut_V1_Request.markingForwarded(try original.serializedBytes()))
        #expect(decoded.hops == 1)
        #expect(decoded.version == 1)
        #expect(decoded.ingest == original.ingest)
        #expect(decoded.unknownFields.data.isEmpty)
        var expected = original
        expected.hops = 1
        #expect(decoded == expected)
    }

    @Test("withTimeout replaces any earlier timeout and leaves every other field as it was", arguments: [0, 7, 30_000])
    func withTimeout(earlier: UInt32) throws {
        let original = Infranaut_V1_Request.with {
            $0.version = 1
            $0.hops = 1
            $0.timeoutMs = earlier
            $0.ingest = .with {
                $0.idempotencyKey = "key"
                $0.batch = batch(rows: 3)
            }
        }
        let marked = Infranaut_V1_Request.withTimeout(try original.serializedBytes(), milliseconds: 1_999)
        let decoded = try Infranaut_V1_Request(serializedBytes: Infranaut_V1_Request.markingForwarded(marked, hops: 2))
        var expected = original
        expected.timeoutMs = 1_999
        expected.hops = 2
        #expect(decoded == expected)
        #expect(decoded.unknownFields.data.isEmpty)
    }

    @Test("markingForwarded keeps a request of another kind intact")
    func markingForwardedStatus() throws {
        let original = Infranaut_V1_Request.with {
            $0.version = 1
            $0.status = .with {
                $0.modelID = "m"
                $0.maxFeatures = 10
            }
        }
        let decoded = try Infranaut_V1_Request(
            serializedBytes: Infranaut_V1_Request.markingForwarded(try original.serializedBytes()))
        var expected = original
        expected.hops = 1
        #expect(decoded == expected)
        #expect(decoded.status.modelID == "m" && decoded.status.maxFeatures == 10)
    }
}
