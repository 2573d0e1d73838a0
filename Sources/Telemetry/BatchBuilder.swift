import Foundation
public import Tabular
public import Wire

/// Collects rows and turns them into one columnar batch. A column is sent as doubles when all its
/// non-missing cells of the batch are numbers, as bools when all are booleans, and as strings
/// otherwise (the node then converts or counts mismatches against the feature's established type).
///
/// The id and time columns, when named, become the batch's `prediction_ids` and
/// `event_time_unix_ms` instead of features; the prediction and label columns stay features and
/// are named in the batch as such.
public struct BatchBuilder {
    public let model: String
    public let idColumn: String?
    public let timeColumn: String?
    public let predictionColumn: String?
    public let labelColumn: String?
    private var rows: [[TabularCell]] = []
    /// ISO 8601 with and without fractional seconds, made once when there is a time column (a
    /// formatter costs far more to create than a row to convert).
    private let timeFormats: (fractional: ISO8601DateFormatter, plain: ISO8601DateFormatter)?

    /// - Parameters:
    ///   - model: The model every batch belongs to.
    ///   - idColumn: The column holding prediction ids, or nil.
    ///   - timeColumn: The column holding event times (Unix milliseconds, or ISO 8601 text), or nil.
    ///   - predictionColumn: The column holding the model's prediction, or nil.
    ///   - labelColumn: The column holding the true label, or nil.
    public init(
        model: String, idColumn: String? = nil, timeColumn: String? = nil, predictionColumn: String? = nil,
        labelColumn: String? = nil
    ) {
        self.model = model
        self.idColumn = idColumn
        self.timeColumn = timeColumn
        self.predictionColumn = predictionColumn
        self.labelColumn = labelColumn
        if timeColumn != nil {
            let fractional = ISO8601DateFormatter()
            fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            timeFormats = (fractional, ISO8601DateFormatter())
        } else {
            timeFormats = nil
        }
    }

    /// Rows collected since the last ``take(columns:)``.
    public var rowCount: Int { rows.count }

    /// Adds a row: one cell per column, in the order of the names later given to ``take(columns:)``.
    /// A row shorter than the names is missing the rest; cells beyond them are ignored.
    public mutating func append(_ row: [TabularCell]) { rows.append(row) }

    /// The collected rows as one batch, with `names` as the columns' names; the builder is empty
    /// afterwards, also when it throws.
    public mutating func take(columns names: [String]) throws(BatchError) -> Infranaut_V1_TelemetryBatch {
        defer { rows.removeAll(keepingCapacity: true) }
        for (role, name) in [
            (BatchError.Role.id, idColumn), (.time, timeColumn), (.prediction, predictionColumn), (.label, labelColumn),
        ] {
            if let name, !names.contains(name) {
                throw BatchError(
                    .unknownColumn, role: role, column: name,
                    message: "no such column; the columns are \(names.joined(separator: ", "))")
            }
        }
        var batch = Infranaut_V1_TelemetryBatch()
        batch.modelID = model
        batch.rowCount = UInt32(rows.count)
        batch.predictionColumn = predictionColumn ?? ""
        batch.labelColumn = labelColumn ?? ""
        for (index, name) in names.enumerated() {
            let cells = rows.map { index < $0.count ? $0[index] : .missing }
            if name == idColumn {
                batch.predictionIds = cells.map(Self.text)
            } else if name == timeColumn {
                var times: [Int64] = []
                times.reserveCapacity(cells.count)
                for (row, cell) in cells.enumerated() { times.append(try eventTime(cell, column: name, row: row)) }
                batch.eventTimeUnixMs = times
            } else {
                batch.columns.append(Self.column(name, cells))
            }
        }
        return batch
    }

    /// One column, typed as the type comment says.
    static func column(_ name: String, _ cells: [TabularCell]) -> Infranaut_V1_Column {
        var column = Infranaut_V1_Column()
        column.name = name
        var numbers = true
        var bools = true
        for cell in cells {
            switch cell {
            case .missing: continue
            case .number: bools = false
            case .bool: numbers = false
            case .string:
                numbers = false
                bools = false
            }
        }
        if numbers {
            column.doubles = .with {
                $0.values = cells.map { if case .number(let n) = $0 { n } else { .nan } }
            }
        } else if bools {
            column.bools = .with {
                $0.values = cells.map { if case .bool(let b) = $0 { b } else { false } }
                $0.missingRows = cells.indices.filter { cells[$0] == .missing }.map(UInt32.init)
            }
        } else {
            column.strings = .with {
                $0.values = cells.map(text)
                $0.missingRows = cells.indices.filter { cells[$0] == .missing }.map(UInt32.init)
            }
        }
        return column
    }

    /// A cell as text: whole numbers below 9e15 without a fraction, missing as "".
    static func text(_ cell: TabularCell) -> String {
        switch cell {
        case .missing: ""
        case .number(let n): n == n.rounded() && abs(n) < 9e15 ? String(Int64(n)) : String(n)
        case .bool(let b): String(b)
        case .string(let s): s
        }
    }

    /// Unix milliseconds of an event-time cell (a number of milliseconds, or ISO 8601 text with or
    /// without fractional seconds); 0 for a missing one.
    func eventTime(_ cell: TabularCell, column: String, row: Int) throws(BatchError) -> Int64 {
        switch cell {
        case .missing:
            return 0
        case .number(let n):
            // Int64(_:) traps beyond its range; such a value is no time anyway.
            if n.isFinite, let ms = Int64(exactly: n.rounded(.towardZero)) { return ms }
            throw BatchError(
                .badTime, role: .time, column: column, row: row,
                message: "\(Self.text(cell)) is not a time in Unix milliseconds")
        case .string(let s):
            if let formats = timeFormats, let date = formats.fractional.date(from: s) ?? formats.plain.date(from: s) {
                return Int64(date.timeIntervalSince1970 * 1000)
            }
            throw BatchError(
                .badTime, role: .time, column: column, row: row,
                message: "\"\(s)\" is neither Unix milliseconds nor ISO 8601 time")
        case .bool:
            throw BatchError(
                .badTime, role: .time, column: column, row: row, message: "\(Self.text(cell)) is not a time")
        }
    }
}

/// Rows that cannot become a batch as asked: which column, which row of the batch, and why.
public struct BatchError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// A column named for a role (id, time, prediction, label) is not among the columns.
        case unknownColumn
        /// An event-time cell is neither Unix milliseconds nor ISO 8601 text.
        case badTime
    }

    /// The role a column was named for.
    public enum Role: String, Sendable {
        case id, time, prediction, label
    }

    public var code: Code
    public var role: Role
    public var column: String
    /// The row within the batch (0-based), when one row is at fault.
    public var row: Int?
    public var message: String

    public init(_ code: Code, role: Role, column: String, row: Int? = nil, message: String) {
        self.code = code
        self.role = role
        self.column = column
        self.row = row
        self.message = message
    }

    /// For example `time column "ts": "soon" is neither Unix milliseconds nor ISO 8601 time`.
    public var description: String { "\(role.rawValue) column \"\(column)\": \(message)" }
}
