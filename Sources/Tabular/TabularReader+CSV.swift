/// CSV (RFC 4180) rows: a fast path for lines without quotes that lie wholly in the buffer, and
/// a general parser for quoted fields (which may span lines).
extension TabularReader {
    func nextCSVRow() throws(TabularError) -> [TabularCell]? {
        while true {
            if let row = try fastRecord() {
                if row.isEmpty { continue }  // blank line
                return row
            }
            let startLine = lineNumber + 1
            guard let fields = try nextRecord() else { return nil }
            if fields.count == 1 && fields[0].isEmpty { continue }  // blank line
            guard fields.count == columns.count else {
                throw TabularError(
                    path: path, line: startLine,
                    message: "row has \(fields.count) fields; the header has \(columns.count)")
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
                return .failure(
                    TabularError(
                        path: path, line: line, message: "row has \(cells.count) fields; the header has \(expected)"))
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
        while upper > lower && (raw[upper - 1] == UInt8(ascii: " ") || raw[upper - 1] == UInt8(ascii: "\r")) {
            upper -= 1
        }
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
    func nextRecord() throws(TabularError) -> [[UInt8]]? {
        var fields: [[UInt8]] = []
        var field: [UInt8] = []
        var inQuotes = false
        var quotedField = false
        var sawAnything = false
        let startLine = lineNumber + 1
        var length = 0
        while true {
            guard let byte = try nextByte() else {
                if inQuotes {
                    throw TabularError(
                        path: path, line: lineNumber + 1,
                        message: "a quoted field is not closed before the end of the file")
                }
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
}
