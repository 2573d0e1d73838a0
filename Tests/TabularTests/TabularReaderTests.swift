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
        let path = try file("a.csv", "x, flag ,name\r\n1.5,true,plain\r\n-2e3,FALSE,\"with, comma\"\r\n,,\"say \"\"hi\"\"\nnext line\"\r\nnan,maybe,  padded  \r\n")
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
        let path = try file("f.jsonl", "{\"a\": 1, \"b\": \"x\"}\n\n{\"a\": null, \"c\": true, \"b\": \"y\"}\n{\"a\": 2.5, \"d\": [1,2]}\nnot json\n")
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
