import Foundation
import Tabular
import Testing

private func file(_ name: String, _ contents: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tabular-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try contents.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func rows(_ reader: TabularReader) throws -> [[TabularCell]] {
    var all: [[TabularCell]] = []
    while let row = try reader.nextRow() { all.append(row) }
    return all
}

@Suite("tabular files")
struct TabularReaderTests {
    @Test("CSV: numbers, booleans, strings, empty fields, quotes with commas, escaped quotes and newlines, CRLF")
    func csvCells() throws {
        let path = try file(
            "a.csv",
            "x, flag ,name\r\n1.5,true,plain\r\n-2e3,FALSE,\"with, comma\"\r\n,,\"say \"\"hi\"\"\nnext line\"\r\nnan,maybe,  padded  \r\n"
        )
        let reader = try TabularReader(path: path)
        #expect(reader.columns == ["x", "flag", "name"])
        let all = try rows(reader)
        #expect(all.count == 4)
        #expect(all[0] == [.number(1.5), .bool(true), .string("plain")])
        #expect(all[1] == [.number(-2000), .bool(false), .string("with, comma")])
        #expect(all[2] == [.missing, .missing, .string("say \"hi\"\nnext line")])
        if case .number(let n) = all[3][0] { #expect(n.isNaN) } else { Issue.record("nan did not parse as a number") }
        #expect(all[3][1] == .string("maybe"))
        #expect(all[3][2] == .string("padded"))
    }

    @Test("CSV: a row with the wrong number of fields is an error naming its line")
    func csvRaggedRow() throws {
        let path = try file("b.csv", "a,b\n1,2\n3\n")
        let reader = try TabularReader(path: path)
        _ = try reader.nextRow()
        do {
            _ = try reader.nextRow()
            Issue.record("ragged row accepted")
        } catch {
            #expect(error.line == 3)
            #expect(error.message.contains("1 fields"))
        }
    }

    @Test("CSV: missing file, unknown extension, empty file and duplicate header names are clear errors")
    func openErrors() throws {
        #expect(throws: TabularError.self) { try TabularReader(path: "/nonexistent/file.csv") }
        #expect(throws: TabularError.self) { try TabularReader(path: try file("c.txt", "a\n1\n")) }
        #expect(throws: TabularError.self) { try TabularReader(path: try file("d.csv", "")) }
        do {
            _ = try TabularReader(path: try file("e.csv", "a,b,a\n1,2,3\n"))
            Issue.record("duplicate header accepted")
        } catch let error as TabularError {
            #expect(error.message.contains("appears twice"))
        }
    }

    @Test("JSON Lines: scalars, nulls, new keys become new columns, bad lines name their line")
    func jsonLines() throws {
        let path = try file(
            "f.jsonl",
            "{\"a\": 1, \"b\": \"x\"}\n\n{\"a\": null, \"c\": true, \"b\": \"y\"}\n{\"a\": 2.5, \"d\": [1,2]}\nnot json\n"
        )
        let reader = try TabularReader(path: path)
        #expect(try reader.nextRow() == [.number(1), .string("x")])
        #expect(try reader.nextRow() == [.missing, .string("y"), .bool(true)])
        #expect(reader.columns == ["a", "b", "c"])
        #expect(try reader.nextRow() == [.number(2.5), .missing, .missing, .string("[1,2]")])
        do {
            _ = try reader.nextRow()
            Issue.record("invalid JSON accepted")
        } catch {
            #expect(error.line == 5)
        }
    }

    @Test("CSV larger than one read chunk streams every row")
    func largeFile() throws {
        var text = "i,v\n"
        for i in 0..<100_000 { text += "\(i),value-\(i % 7)\n" }
        let reader = try TabularReader(path: try file("g.csv", text))
        var count = 0
        var sum = 0.0
        while let row = try reader.nextRow() {
            if case .number(let n) = row[0] { sum += n }
            count += 1
        }
        #expect(count == 100_000)
        #expect(sum == Double(99_999 * 100_000 / 2))
    }
}

/// The error `body` throws, if any (`nil` when it throws none or not a TabularError).
private func error(_ body: () throws -> Void) -> TabularError? {
    do {
        try body()
        return nil
    } catch {
        return error as? TabularError
    }
}

private func limit(_ bytes: Int) -> TabularReaderSettings {
    var settings = TabularReaderSettings()
    settings.maxLineBytes = bytes
    return settings
}

@Suite("tabular files: limits, encodings and numbers")
struct TabularEdgeTests {
    @Test("a line longer than the limit is an error naming its line, in CSV (plain or quoted) and JSON Lines")
    func lineLimit() throws {
        let long = String(repeating: "x", count: 200)
        let csv = try TabularReader(path: try file("a.csv", "a,b\n1,2\n\(long),3\n"), settings: limit(100))
        _ = try csv.nextRow()
        let plain = error { _ = try csv.nextRow() }
        #expect(plain?.line == 3)
        #expect(plain?.message.contains("longer than 100 bytes") == true, "\(String(describing: plain))")

        // A quoted field spanning lines counts towards the line the row starts on.
        let quoted = try TabularReader(
            path: try file("b.csv", "a,b\n\"\(long.prefix(60))\n\(long.prefix(60))\",1\n"), settings: limit(100))
        #expect(error { _ = try quoted.nextRow() }?.line == 2)

        let jsonl = try TabularReader(
            path: try file("c.jsonl", "{\"a\": 1}\n{\"a\": \"\(long)\"}\n"), settings: limit(100))
        _ = try jsonl.nextRow()
        #expect(error { _ = try jsonl.nextRow() }?.line == 2)

        // Lines at the limit pass.
        let exact = try TabularReader(path: try file("d.csv", "a\n\(long.prefix(100))\n"), settings: limit(100))
        #expect(try exact.nextRow() == [.string(String(long.prefix(100)))])
    }

    @Test("a file without line breaks fails at the default 1 MiB limit, on its first line")
    func noLineBreaks() throws {
        let path = try file("e.csv", String(repeating: "a", count: 3 << 20))
        let failure = error { _ = try TabularReader(path: path) }
        #expect(failure?.line == 1)
        #expect(failure?.message.contains("longer than 1048576 bytes") == true)
    }

    @Test("NUL bytes: an error naming the line, not a column name or a value")
    func nulBytes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tabular-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let zeros = dir.appendingPathComponent("zeros.csv").path
        try Data(count: 1 << 16).write(to: URL(fileURLWithPath: zeros))
        #expect(error { _ = try TabularReader(path: zeros) }?.message.contains("NUL byte") == true)

        let inRow = dir.appendingPathComponent("row.csv").path
        try Data("a,b\n1,2\n3,x\0y\n".utf8).write(to: URL(fileURLWithPath: inRow))
        let reader = try TabularReader(path: inRow)
        _ = try reader.nextRow()
        let failure = error { _ = try reader.nextRow() }
        #expect(failure?.line == 3)
        #expect(failure?.message.contains("NUL byte") == true)
    }

    @Test("a UTF-8 byte-order mark is not part of the first column's name")
    func byteOrderMark() throws {
        let csv = try TabularReader(path: try file("f.csv", "\u{FEFF}id,v\n1,2\n"))
        #expect(csv.columns == ["id", "v"])
        #expect(try csv.nextRow() == [.number(1), .number(2)])
        let jsonl = try TabularReader(path: try file("g.jsonl", "\u{FEFF}{\"id\": 1}\n"))
        #expect(try jsonl.nextRow() == [.number(1)])
        #expect(jsonl.columns == ["id"])
    }

    @Test("a file without rows is an error: header only, empty, blank lines only")
    func noRows() throws {
        for (name, contents, what) in [
            ("h.csv", "a,b\n", "only a header"), ("i.csv", "a,b\n\n\n", "only a header"),
            ("j.jsonl", "", "nothing"), ("k.jsonl", "\n  \n", "only blank lines"),
        ] {
            let reader = try TabularReader(path: try file(name, contents))
            let failure = error { _ = try reader.nextRow() }
            #expect(failure?.message == "no rows: the file holds \(what)", "\(name): \(String(describing: failure))")
        }
        // After at least one row the end is a plain nil.
        let one = try TabularReader(path: try file("l.csv", "a\n1\n"))
        #expect(try one.nextRow() == [.number(1)])
        #expect(try one.nextRow() == nil)
    }

    @Test("one number grammar: decimal literals and (CSV) inf/nan words; hex is text")
    func numberGrammar() throws {
        let reader = try TabularReader(
            path: try file("m.csv", "v\n+.5\n5.\n-2E+3\n1e-400\n-Infinity\nINF\n0x1F\n1e\n.\n-\n1.2.3\n"))
        let cells = try rows(reader).map { $0[0] }
        #expect(
            Array(cells.prefix(6)) == [
                .number(0.5), .number(5), .number(-2000), .number(0), .number(-.infinity), .number(.infinity),
            ])
        #expect(
            Array(cells.dropFirst(6)) == [.string("0x1F"), .string("1e"), .string("."), .string("-"), .string("1.2.3")])
    }

    @Test("a number beyond Double's range is an error naming line, column and value, in CSV and JSON Lines alike")
    func numberOutOfRange() throws {
        let csv = try TabularReader(path: try file("n.csv", "a,b\n1,2\n3,-1e400\n"))
        _ = try csv.nextRow()
        let csvError = error { _ = try csv.nextRow() }
        #expect(csvError?.line == 3)
        #expect(csvError?.message == "column \"b\": -1e400 is beyond the range of a 64-bit number (±1.8e308)")

        // The general (quoted-field) CSV path says the same.
        let quoted = try TabularReader(path: try file("o.csv", "a,b\n\"x\",1e999\n"))
        #expect(error { _ = try quoted.nextRow() }?.message.contains("column \"b\": 1e999") == true)

        let jsonl = try TabularReader(
            path: try file("p.jsonl", "{\"a\": 1, \"b\": 2}\n{\"a\": [1, 2], \"b\": 1e400}\n"))
        _ = try jsonl.nextRow()
        let jsonError = error { _ = try jsonl.nextRow() }
        #expect(jsonError?.line == 2)
        #expect(jsonError?.message == "column \"b\": 1e400 is beyond the range of a 64-bit number (±1.8e308)")
        // Other malformed JSON keeps its own message.
        let broken = try TabularReader(path: try file("q.jsonl", "{\"a\": }\n"))
        #expect(error { _ = try broken.nextRow() }?.message.hasPrefix("not valid JSON") == true)
    }
}
