import Foundation
import Tabular
import Telemetry
import Testing
import Wire

private func doubles(_ column: Infranaut_V1_Column) -> [Double]? {
    if case .doubles(let values) = column.values { values.values } else { nil }
}

private func column(_ batch: Infranaut_V1_TelemetryBatch, _ name: String) -> Infranaut_V1_Column? {
    batch.columns.first { $0.name == name }
}

@Suite("batch builder")
struct BatchBuilderTests {
    @Test(
        "a column is doubles when every present cell is a number, bools when every one is a boolean, strings otherwise")
    func columnTyping() throws {
        var builder = BatchBuilder(model: "m")
        builder.append([.number(1.5), .bool(true), .number(2), .missing])
        builder.append([.missing, .missing, .string("b"), .missing])
        builder.append([.number(-3), .bool(false), .bool(true), .missing])
        let batch = try builder.take(columns: ["x", "flag", "mixed", "empty"])

        #expect(batch.modelID == "m")
        #expect(batch.rowCount == 3)
        #expect(batch.columns.map(\.name) == ["x", "flag", "mixed", "empty"])

        // Numbers: a missing cell is NaN, and doubles carry no missing rows.
        let x = try #require(column(batch, "x").flatMap(doubles))
        #expect(x.count == 3)
        #expect(x[0] == 1.5 && x[1].isNaN && x[2] == -3)

        guard case .bools(let flag) = column(batch, "flag")?.values else {
            Issue.record("flag is not a bool column")
            return
        }
        #expect(flag.values == [true, false, false])
        #expect(flag.missingRows == [1])

        guard case .strings(let mixed) = column(batch, "mixed")?.values else {
            Issue.record("mixed is not a string column")
            return
        }
        #expect(mixed.values == ["2", "b", "true"])
        #expect(mixed.missingRows.isEmpty)

        // A column with no value at all carries no type to infer: it goes as doubles, all NaN.
        let empty = try #require(column(batch, "empty").flatMap(doubles))
        #expect(empty.count == 3 && empty.allSatisfy(\.isNaN))

        try batch.validate()
    }

    @Test("missing cells of string and bool columns are listed as missing rows, with an empty or false placeholder")
    func missingRows() throws {
        var builder = BatchBuilder(model: "m")
        for row: [TabularCell] in [[.missing, .bool(true)], [.string("a"), .missing], [.missing, .missing]] {
            builder.append(row)
        }
        let batch = try builder.take(columns: ["s", "b"])
        guard case .strings(let s) = column(batch, "s")?.values, case .bools(let b) = column(batch, "b")?.values else {
            Issue.record("unexpected column types: \(batch.columns)")
            return
        }
        #expect(s.values == ["", "a", ""])
        #expect(s.missingRows == [0, 2])
        #expect(b.values == [true, false, false])
        #expect(b.missingRows == [1, 2])
    }

    @Test("numbers become text without a spurious fraction; large and fractional ones keep their form")
    func numbersAsText() throws {
        var builder = BatchBuilder(model: "m", idColumn: "id")
        for id: TabularCell in [
            .number(42), .number(-7), .number(0.25), .number(1e20), .bool(false), .string("p-1"), .missing,
        ] {
            builder.append([id, .number(1)])
        }
        let batch = try builder.take(columns: ["id", "x"])
        #expect(batch.predictionIds == ["42", "-7", "0.25", "1e+20", "false", "p-1", ""])
        #expect(batch.columns.map(\.name) == ["x"])
    }

    @Test("id and time columns become prediction ids and event times, not features; prediction and label stay features")
    func roleColumns() throws {
        var builder = BatchBuilder(
            model: "m", idColumn: "id", timeColumn: "ts", predictionColumn: "score", labelColumn: "label")
        builder.append([.string("a"), .number(1_700_000_000_123), .number(0.9), .bool(true), .number(5)])
        builder.append([.string("b"), .string("2024-03-01T12:00:00Z"), .number(0.1), .bool(false), .number(6)])
        builder.append([.string("c"), .string("2024-03-01T12:00:00.250Z"), .number(0.5), .missing, .number(7)])
        builder.append([.string("d"), .missing, .number(0.4), .bool(false), .number(8)])
        let batch = try builder.take(columns: ["id", "ts", "score", "label", "x"])

        #expect(batch.predictionIds == ["a", "b", "c", "d"])
        #expect(batch.eventTimeUnixMs == [1_700_000_000_123, 1_709_294_400_000, 1_709_294_400_250, 0])
        #expect(batch.columns.map(\.name) == ["score", "label", "x"])
        #expect(batch.predictionColumn == "score")
        #expect(batch.labelColumn == "label")
        try batch.validate()
    }

    @Test("a role naming no column of the file is an error naming the role, the column and the file's columns")
    func unknownRoleColumn() throws {
        var builder = BatchBuilder(model: "m", labelColumn: "truth")
        builder.append([.number(1)])
        let error = try #require(throws: BatchError.self) { try builder.take(columns: ["x"]) }
        #expect(error.code == .unknownColumn)
        #expect(error.role == .label)
        #expect(error.column == "truth")
        #expect(error.row == nil)
        #expect(error.description == "label column \"truth\": no such column; the columns are x")
        // The rows of the failed batch are gone with it.
        #expect(builder.rowCount == 0)
    }

    @Test("an event time that is not one names its row in the batch; one beyond Int64 is refused, not a crash")
    func badEventTimes() throws {
        let bad: [(TabularCell, String)] = [
            (.string("soon"), "\"soon\" is neither Unix milliseconds nor ISO 8601 time"),
            (.bool(true), "true is not a time"),
            (.number(1e19), "1e+19 is not a time in Unix milliseconds"),
            (.number(-.infinity), "-inf is not a time in Unix milliseconds"),
            (.number(.nan), "nan is not a time in Unix milliseconds"),
        ]
        for (cell, message) in bad {
            var builder = BatchBuilder(model: "m", timeColumn: "ts")
            builder.append([.number(1), .number(1)])
            builder.append([.number(2), .number(2)])
            builder.append([cell, .number(3)])
            let error = try #require(throws: BatchError.self) { try builder.take(columns: ["ts", "x"]) }
            #expect(error.code == .badTime)
            #expect(error.role == .time)
            #expect(error.column == "ts")
            #expect(error.row == 2)
            #expect(error.message == message)
        }
        // The largest and smallest whole milliseconds that fit are accepted; fractions are cut.
        var builder = BatchBuilder(model: "m", timeColumn: "ts")
        for value in [-9.2e18, 9.2e18, 1.9, -1.9] { builder.append([.number(value)]) }
        #expect(
            try builder.take(columns: ["ts"]).eventTimeUnixMs == [
                -9_200_000_000_000_000_000, 9_200_000_000_000_000_000, 1, -1,
            ])
    }

    @Test("short rows are missing the rest, cells beyond the names are ignored, and take starts a new batch")
    func rowShapesAndBatches() throws {
        var builder = BatchBuilder(model: "m")
        #expect(builder.rowCount == 0)
        builder.append([.number(1)])
        builder.append([.number(2), .number(20), .number(200)])
        #expect(builder.rowCount == 2)
        let first = try builder.take(columns: ["a", "b"])
        #expect(builder.rowCount == 0)
        #expect(first.rowCount == 2)
        let b = try #require(column(first, "b").flatMap(doubles))
        #expect(b[0].isNaN && b[1] == 20)
        #expect(first.columns.count == 2)

        builder.append([.number(3), .number(30)])
        let second = try builder.take(columns: ["a", "b"])
        #expect(second.rowCount == 1)
        #expect(column(second, "a").flatMap(doubles) == [3])
    }

    @Test("a CSV file read by TabularReader becomes batches of at most the batch size that pass the node's validation")
    func fromFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("telemetry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("week.csv").path
        var text = "id,ts,x,segment,score\n"
        for row in 0..<25 {
            text += "r\(row),\(1_000 + row),\(row % 3 == 0 ? "" : "\(row)"),\(row % 2 == 0 ? "a" : "b"),0.\(row % 10)\n"
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)

        let reader = try TabularReader(path: path)
        var builder = BatchBuilder(model: "m", idColumn: "id", timeColumn: "ts", predictionColumn: "score")
        var batches: [Infranaut_V1_TelemetryBatch] = []
        while let row = try reader.nextRow() {
            builder.append(row)
            if builder.rowCount == 10 { batches.append(try builder.take(columns: reader.columns)) }
        }
        batches.append(try builder.take(columns: reader.columns))

        #expect(batches.map(\.rowCount) == [10, 10, 5])
        #expect(batches.flatMap(\.predictionIds) == (0..<25).map { "r\($0)" })
        #expect(batches.flatMap(\.eventTimeUnixMs) == (0..<25).map { 1_000 + Int64($0) })
        for batch in batches {
            #expect(batch.columns.map(\.name) == ["x", "segment", "score"])
            try Infranaut_V1_IngestRequest.with {
                $0.idempotencyKey = "k"
                $0.batch = batch
            }.validate()
        }
        let x = batches.flatMap { column($0, "x").flatMap(doubles) ?? [] }
        #expect(x.count == 25)
        #expect(x.enumerated().allSatisfy { row, value in row % 3 == 0 ? value.isNaN : value == Double(row) })
    }
}
