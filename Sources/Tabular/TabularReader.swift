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
    public internal(set) var columns: [String] = []
    /// Line number of the row last returned (1-based, counting the header).
    public internal(set) var lineNumber = 0

    public let settings: TabularReaderSettings
    private let handle: FileHandle
    var buffer: [UInt8] = []
    var position = 0
    private var atEOF = false
    var columnIndex: [String: Int] = [:]
    private var rowsReturned = 0

    /// Opens `path`; the format comes from its extension unless given.
    public init(path: String, format: TabularFormat? = nil, settings: TabularReaderSettings = TabularReaderSettings())
        throws(TabularError)
    {
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
            throw TabularError(
                path: path, message: "cannot open the file for reading: \(String(cString: strerror(errno)))")
        }
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        if try refill(), buffer.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }
        if format == .csv {
            guard let header = try nextRecord() else {
                throw TabularError(path: path, line: 1, message: "the file is empty; expected a header row")
            }
            lineNumber = 1
            columns = header.map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespaces) }
            for (index, name) in columns.enumerated() {
                guard !name.isEmpty else {
                    throw TabularError(path: path, line: 1, message: "column \(index + 1) has an empty name")
                }
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

    func lineTooLong(_ line: Int) -> TabularError {
        TabularError(
            path: path, line: line,
            message:
                "line longer than \(settings.maxLineBytes) bytes (the line limit); is this a \(format == .csv ? "CSV" : "JSON Lines") file?"
        )
    }

    func nulByte(_ line: Int) -> TabularError {
        TabularError(path: path, line: line, message: "line holds a NUL byte; is this a text file?")
    }

    /// The error for a number literal beyond `Double`'s range.
    func outOfRange(_ line: Int, column: String, value: some Collection<UInt8>) -> TabularError {
        var text = String(decoding: value.prefix(40), as: UTF8.self)
        if value.count > 40 { text += "…" }
        return TabularError(
            path: path, line: line,
            message: "column \"\(column)\": \(text) is beyond the range of a 64-bit number (±1.8e308)")
    }

    // MARK: - Buffered bytes

    @inline(__always)
    func nextByte() throws(TabularError) -> UInt8? {
        if position == buffer.count {
            guard try refill() else { return nil }
        }
        defer { position += 1 }
        return buffer[position]
    }

    func peekByte() throws(TabularError) -> UInt8? {
        if position == buffer.count { guard try refill() else { return nil } }
        return buffer[position]
    }

    func refill() throws(TabularError) -> Bool {
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
