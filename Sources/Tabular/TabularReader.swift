import Foundation

/// One value of a row read from a CSV or JSON Lines file.
public enum TabularCell: Sendable, Equatable {
    /// An empty CSV field, a JSON `null`, or a key absent from a JSON object.
    case missing
    case number(Double)
    case string(String)
    case bool(Bool)
}

/// The file formats ``TabularReader`` understands.
public enum TabularFormat: String, Sendable {
    case csv
    case jsonl

    /// The format implied by a path's extension (`.csv`, `.jsonl`, `.ndjson`), or `nil`.
    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": self = .csv
        case "jsonl", "ndjson": self = .jsonl
        default: return nil
        }
    }
}

/// A problem reading a file: what and where (line number, column).
public struct TabularError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int?
    public var message: String

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}

/// Limits of a ``TabularReader``.
public struct TabularReaderSettings: Sendable {
    /// Longest line accepted, in bytes; a longer one is an error naming its line, so that a file
    /// that is not text (or has no line breaks) fails fast instead of filling memory. A quoted CSV
    /// field that spans lines counts towards the line it starts on. Default 1 MiB.
    public var maxLineBytes = 1 << 20

    public init() {}
}

/// Streams rows from a CSV (RFC 4180: header row, quoted fields, `""` escapes, CRLF or LF) or JSON
/// Lines file in bounded memory: the file is read in 1 MiB chunks and only the current row is kept,
/// and no row may exceed ``TabularReaderSettings/maxLineBytes``. A UTF-8 byte-order mark at the
/// start is skipped. A CSV line holding a NUL byte is an error (the file is not text).
///
/// CSV cells: an empty field is `.missing`; a field that is a number (below) is `.number`;
/// `true`/`false` (any case) is `.bool`; anything else is `.string`. JSON Lines: each line is one
/// object of scalars; a key first seen in a later line becomes a new column (missing in earlier
/// rows); nested arrays and objects are kept as their JSON text.
///
/// Numbers: a decimal literal (optional sign, digits with an optional fraction, optional
/// exponent), or in CSV also `inf`, `infinity` or `nan` in any case with an optional sign. Hex
/// literals are text. A literal whose magnitude is beyond `Double`'s range (such as `1e400`) is an
/// error naming the line, column and value in both formats: no 64-bit producer writes such a value,
/// so it marks a corrupt or mistyped file, and turning it into infinity would hide that in a count.
/// Literals too small to represent become 0 or the nearest subnormal.
///
/// ``nextRow()`` throws at the end of a file that held no row (empty, only a header or only blank
/// lines): a file without data is a mistake, not an empty dataset.
public final class TabularReader {
    public let path: String
    public let format: TabularFormat
    /// Column names: the CSV header, or the JSON keys in order of first appearance.
    public private(set) var columns: [String] = []
    /// Line number of the row last returned (1-based, counting the header).
    public private(set) var lineNumber = 0

    public let settings: TabularReaderSettings
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var position = 0
    private var atEOF = false
    private var columnIndex: [String: Int] = [:]
    private var rowsReturned = 0

    /// Opens `path`; the format comes from its extension unless given.
    public init(path: String, format: TabularFormat? = nil, settings: TabularReaderSettings = TabularReaderSettings()) throws(TabularError) {
        self.path = path
        self.settings = settings
        guard let format = format ?? TabularFormat(path: path) else {
            throw TabularError(path: path, message: "unknown file type; use a .csv or .jsonl file")
        }
        self.format = format
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TabularError(path: path, message: "no such file")
        }
        guard !isDirectory.boolValue else { throw TabularError(path: path, message: "is a directory, not a file") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw TabularError(path: path, message: "cannot open the file for reading: \(String(cString: strerror(errno)))")
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        if try refill(), buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        if format == .csv {
            guard let header = try nextRecord() else { throw TabularError(path: path, line: 1, message: "the file is empty; expected a header row") }
            lineNumber = 1
            columns = header.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
            for (index, name) in columns.enumerated() {
                guard !name.isEmpty else { throw TabularError(path: path, line: 1, message: "column \(index + 1) has an empty name") }
                guard columnIndex[name] == nil else {
                    throw TabularError(path: path, line: 1, message: "column \"\(name)\" appears twice in the header")
                }
                columnIndex[name] = index
            }
        }
    }

    deinit { try? handle.close() }

    /// The next row, one cell per column of ``columns`` (as it is after this row), or `nil` at the
    /// end. Throws at the end of a file that held no row at all.
    public func nextRow() throws(TabularError) -> [TabularCell]? {
        let row: [TabularCell]?
        switch format {
        case .csv: row = try nextCSVRow()
        case .jsonl: row = try nextJSONRow()
        }
        guard let row else {
            if rowsReturned == 0 {
                let what = format == .csv ? "only a header" : (lineNumber == 0 ? "nothing" : "only blank lines")
                throw TabularError(path: path, line: nil, message: "no rows: the file holds \(what)")
            }
            return nil
        }
        rowsReturned += 1
        return row
    }

    private func lineTooLong(_ line: Int) -> TabularError {
        TabularError(
            path: path, line: line,
            message: "line longer than \(settings.maxLineBytes) bytes (the line limit); is this a \(format == .csv ? "CSV" : "JSON Lines") file?")
    }

    private func nulByte(_ line: Int) -> TabularError {
        TabularError(path: path, line: line, message: "line holds a NUL byte; is this a text file?")
    }

    /// The error for a number literal beyond `Double`'s range.
    private func outOfRange(_ line: Int, column: String, value: some Collection<UInt8>) -> TabularError {
        var text = String(decoding: value.prefix(40), as: UTF8.self)
        if value.count > 40 { text += "…" }
        return TabularError(
            path: path, line: line,
            message: "column \"\(column)\": \(text) is beyond the range of a 64-bit number (±1.8e308)")
    }

    // MARK: - CSV

    private func nextCSVRow() throws(TabularError) -> [TabularCell]? {
        while true {
            if let row = try fastRecord() {
                if row.isEmpty { continue }  // blank line
                return row
            }
            let startLine = lineNumber + 1
            guard let fields = try nextRecord() else { return nil }
            if fields.count == 1 && fields[0].isEmpty { continue }  // blank line
            guard fields.count == columns.count else {
                throw TabularError(path: path, line: startLine, message: "row has \(fields.count) fields; the header has \(columns.count)")
            }
            var row: [TabularCell] = []
            row.reserveCapacity(fields.count)
            for (index, field) in fields.enumerated() {
                guard let cell = Self.cell(field) else {
                    throw outOfRange(startLine, column: columns[index], value: field)
                }
                row.append(cell)
            }
            return row
        }
    }

    /// The common case without copying: the next line lies wholly in the buffer and holds no quote,
    /// so its fields are the bytes between commas. Returns `nil` to fall back to the general parser
    /// (quotes, or a line that crosses the buffer's end), `[]` for a blank line.
    private func fastRecord() throws(TabularError) -> [TabularCell]? {
        if position == buffer.count { guard try refill() else { return nil } }
        let expected = columns.count
        let line = lineNumber + 1
        let result: Result<[TabularCell], TabularError>? = buffer.withUnsafeBufferPointer { bytes in
            var end = position
            while end < bytes.count {
                let byte = bytes[end]
                if byte == UInt8(ascii: "\n") { break }
                if byte == UInt8(ascii: "\"") || byte == 0 { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            guard end - position <= settings.maxLineBytes else { return .failure(lineTooLong(line)) }
            var lineEnd = end
            if lineEnd > position && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            if lineEnd == position {
                position = end + 1
                return .success([])
            }
            var cells: [TabularCell] = []
            cells.reserveCapacity(expected)
            var start = position
            var index = position
            while true {
                if index == lineEnd || bytes[index] == UInt8(ascii: ",") {
                    let field = Self.trimmed(UnsafeBufferPointer(rebasing: bytes[start..<index]))
                    guard let cell = Self.cell(field) else {
                        let column = cells.count < expected ? columns[cells.count] : "#\(cells.count + 1)"
                        return .failure(outOfRange(line, column: column, value: field))
                    }
                    cells.append(cell)
                    if index == lineEnd { break }
                    start = index + 1
                }
                index += 1
            }
            position = end + 1
            guard cells.count == expected else {
                return .failure(TabularError(path: path, line: line, message: "row has \(cells.count) fields; the header has \(expected)"))
            }
            return .success(cells)
        }
        guard let result else { return nil }
        lineNumber = line
        return try result.get()
    }

    /// An unquoted field without its surrounding spaces (and a trailing carriage return).
    static func trimmed(_ raw: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var lower = 0
        var upper = raw.count
        while lower < upper && raw[lower] == UInt8(ascii: " ") { lower += 1 }
        while upper > lower && (raw[upper - 1] == UInt8(ascii: " ") || raw[upper - 1] == UInt8(ascii: "\r")) { upper -= 1 }
        return UnsafeBufferPointer(rebasing: raw[lower..<upper])
    }

    /// The cell a field's bytes stand for (see the type's documentation), or `nil` for a number
    /// literal beyond `Double`'s range.
    static func cell(_ field: UnsafeBufferPointer<UInt8>) -> TabularCell? {
        if field.isEmpty { return .missing }
        switch TabularNumber.parse(field, words: true) {
        case .number(let number): return .number(number)
        case .outOfRange: return nil
        case .notANumber: break
        }
        if field.count == 4 || field.count == 5 {
            let lowered = field.map { $0 | 0x20 }
            if lowered.elementsEqual("true".utf8) { return .bool(true) }
            if lowered.elementsEqual("false".utf8) { return .bool(false) }
        }
        return .string(String(decoding: field, as: UTF8.self))
    }

    static func cell(_ field: [UInt8]) -> TabularCell? {
        field.withUnsafeBufferPointer { cell($0) }
    }

    /// Reads one CSV record (which may span lines inside quotes) as raw field bytes.
    private func nextRecord() throws(TabularError) -> [[UInt8]]? {
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var inQuotes = false
        var quotedField = false
        var sawAnything = false
        let startLine = lineNumber + 1
        var length = 0
        while true {
            guard let byte = try nextByte() else {
                if inQuotes { throw TabularError(path: path, line: lineNumber + 1, message: "a quoted field is not closed before the end of the file") }
                if !sawAnything { return nil }
                fields.append(field)
                lineNumber += 1
                return fields
            }
            sawAnything = true
            length += 1
            guard length <= settings.maxLineBytes else { throw lineTooLong(startLine) }
            guard byte != 0 else { throw nulByte(lineNumber + 1) }
            if inQuotes {
                if byte == UInt8(ascii: "\"") {
                    if try peekByte() == UInt8(ascii: "\"") {
                        _ = try nextByte()
                        field.append(byte)
                    } else {
                        inQuotes = false
                    }
                } else {
                    if byte == UInt8(ascii: "\n") { lineNumber += 1 }
                    field.append(byte)
                }
                continue
            }
            switch byte {
            case UInt8(ascii: ","):
                fields.append(quotedField ? field : trimmed(field))
                field.removeAll(keepingCapacity: true)
                quotedField = false
            case UInt8(ascii: "\""):
                if field.allSatisfy({ $0 == UInt8(ascii: " ") }) {
                    field.removeAll(keepingCapacity: true)
                    inQuotes = true
                    quotedField = true
                } else {
                    field.append(byte)
                }
            case UInt8(ascii: "\n"):
                if field.last == UInt8(ascii: "\r") { field.removeLast() }
                fields.append(quotedField ? field : trimmed(field))
                lineNumber += 1
                return fields
            default:
                field.append(byte)
            }
        }
    }

    private func trimmed(_ field: [UInt8]) -> [UInt8] {
        field.withUnsafeBufferPointer { Array(Self.trimmed($0)) }
    }

    // MARK: - JSON Lines

    private func nextJSONRow() throws(TabularError) -> [TabularCell]? {
        while true {
            guard let line = try nextLine() else { return nil }
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) { continue }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            } catch {
                // Foundation rejects a number beyond Double's range with a generic message: name it.
                if let (key, literal) = TabularNumber.firstOutOfRange(inJSON: line) {
                    throw outOfRange(lineNumber, column: key, value: literal)
                }
                throw TabularError(path: path, line: lineNumber, message: "not valid JSON (\((error as NSError).localizedDescription))")
            }
            guard let dictionary = object as? [String: Any] else {
                throw TabularError(path: path, line: lineNumber, message: "expected a JSON object per line")
            }
            var row = [TabularCell](repeating: .missing, count: columns.count)
            for key in dictionary.keys.sorted() {
                let index: Int
                if let known = columnIndex[key] {
                    index = known
                } else {
                    index = columns.count
                    columns.append(key)
                    columnIndex[key] = index
                    row.append(.missing)
                }
                guard let cell = Self.cell(json: dictionary[key]!) else {
                    throw outOfRange(lineNumber, column: key, value: Array("\(dictionary[key]!)".utf8))
                }
                row[index] = cell
            }
            return row
        }
    }

    /// The cell of a JSON value, or `nil` for a number beyond `Double`'s range (JSON has no
    /// infinity, so an infinite value can only come from such a literal).
    static func cell(json value: Any) -> TabularCell? {
        switch value {
        case is NSNull: return .missing
        case let flag as Bool where Self.isBoolean(value):
            return .bool(flag)
        case let number as NSNumber:
            let double = number.doubleValue
            return double.isFinite ? .number(double) : nil
        case let string as String: return .string(string)
        default:
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
                return .string(String(decoding: data, as: UTF8.self))
            }
            return .string("\(value)")
        }
    }

    /// JSON `true`/`false` arrive as NSNumbers whose Objective-C type is `c` (char); integers and
    /// doubles use other codes, so 1 and 0 stay numbers.
    static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    private func nextLine() throws(TabularError) -> [UInt8]? {
        var line: [UInt8] = []
        while true {
            guard let byte = try nextByte() else { return line.isEmpty ? nil : line }
            if byte == UInt8(ascii: "\n") { return line }
            guard line.count < settings.maxLineBytes else { throw lineTooLong(lineNumber + 1) }
            line.append(byte)
        }
    }

    // MARK: - Buffered bytes

    @inline(__always)
    private func nextByte() throws(TabularError) -> UInt8? {
        if position == buffer.count {
            guard try refill() else { return nil }
        }
        defer { position += 1 }
        return buffer[position]
    }

    private func peekByte() throws(TabularError) -> UInt8? {
        if position == buffer.count { guard try refill() else { return nil } }
        return buffer[position]
    }

    private func refill() throws(TabularError) -> Bool {
        guard !atEOF else { return false }
        let data: Data
        do {
            data = try handle.read(upToCount: 1 << 20) ?? Data()
        } catch {
            throw TabularError(path: path, line: lineNumber, message: "read failed: \(error.localizedDescription)")
        }
        if data.isEmpty {
            atEOF = true
            return false
        }
        buffer = [UInt8](data)
        position = 0
        return true
    }
}
