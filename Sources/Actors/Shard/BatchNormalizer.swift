public import Wire

/// Converts a validated batch to the model's established feature types.
///
/// The first batch that carries a feature establishes its type (the type of that column).
/// Later columns of another type are converted value by value where the value has an obvious
/// reading in the established type (a numeric string for a double feature, "true"/"false" for a
/// boolean one); every other value is a *type mismatch*: it is counted for the feature, reported
/// (the first few, with row and column) to the client, and stored as missing. The result is what
/// the op log stores, so replaying it is deterministic and needs no schema.
public struct BatchNormalizer: Sendable {
    /// Mismatches reported back to the client per batch.
    public static let reportedMismatchLimit = 10

    public struct Result: Sendable {
        public var batch: Infranaut_V1_TelemetryBatch
        /// Per column of `batch`: values that did not fit.
        public var mismatchCounts: [UInt64]
        public var firstMismatches: [Infranaut_V1_TypeMismatch]
        /// The rows of every mismatch, for the columns that have any.
        public var mismatchRows: [Infranaut_V1_MismatchRows]
        public var totalMismatches: UInt64 { mismatchCounts.reduce(0, +) }
    }

    /// Normalises `batch` against `schema` (feature name -> established type) and adds the types of
    /// new features to `schema`.
    public static func normalize(
        _ batch: Infranaut_V1_TelemetryBatch,
        schema: inout [String: Infranaut_V1_FeatureType]
    ) -> Result {
        var out = batch
        var counts: [UInt64] = []
        var reported: [Infranaut_V1_TypeMismatch] = []
        var rows: [Infranaut_V1_MismatchRows] = []
        counts.reserveCapacity(batch.columns.count)
        for index in batch.columns.indices {
            let column = batch.columns[index]
            let incoming = column.featureType
            guard let established = schema[column.name] else {
                // A column with no values says nothing about the feature's type: it does not
                // establish one (ModelState counts its rows as missing until a typed column does).
                if !column.isAllMissing { schema[column.name] = incoming }
                counts.append(0)
                continue
            }
            if established == incoming {
                counts.append(0)
                continue
            }
            var mismatchRows: [UInt32] = []
            var report = { (row: Int, value: String) in
                mismatchRows.append(UInt32(row))
                if reported.count < reportedMismatchLimit {
                    reported.append(
                        .with {
                            $0.row = UInt32(row)
                            $0.column = column.name
                            $0.expected = established.wireName
                            $0.value = String(value.prefix(64))
                        })
                }
            }
            let (converted, mismatches) = convert(column, to: established, report: &report)
            out.columns[index] = converted
            counts.append(mismatches)
            if !mismatchRows.isEmpty {
                rows.append(
                    .with {
                        $0.column = UInt32(index)
                        $0.rows = mismatchRows
                    })
            }
        }
        return Result(batch: out, mismatchCounts: counts, firstMismatches: reported, mismatchRows: rows)
    }

    private static func convert(
        _ column: Infranaut_V1_Column,
        to type: Infranaut_V1_FeatureType,
        report: inout (Int, String) -> Void
    ) -> (Infranaut_V1_Column, UInt64) {
        let cells = column.cells
        var mismatches: UInt64 = 0
        var result = Infranaut_V1_Column()
        result.name = column.name
        switch type {
        case .double:
            var values = [Double](repeating: .nan, count: cells.count)
            for (row, cell) in cells.enumerated() {
                switch cell {
                case .missing: break
                case .string(let text):
                    if let number = Double(text.trimmingSpaces) {
                        values[row] = number
                    } else {
                        mismatches += 1
                        report(row, text)
                    }
                case .bool(let flag):
                    mismatches += 1
                    report(row, String(flag))
                case .double(let number):
                    values[row] = number
                }
            }
            result.doubles = .with { $0.values = values }
        case .bool:
            var values = [Bool](repeating: false, count: cells.count)
            var missing: [UInt32] = []
            for (row, cell) in cells.enumerated() {
                switch cell {
                case .missing: missing.append(UInt32(row))
                case .bool(let flag): values[row] = flag
                case .string(let text):
                    switch text.trimmingSpaces.lowercased() {
                    case "true": values[row] = true
                    case "false": values[row] = false
                    default:
                        mismatches += 1
                        missing.append(UInt32(row))
                        report(row, text)
                    }
                case .double(let number):
                    mismatches += 1
                    missing.append(UInt32(row))
                    report(row, String(number))
                }
            }
            result.bools = .with {
                $0.values = values
                $0.missingRows = missing
            }
        default:
            var values = [String](repeating: "", count: cells.count)
            var missing: [UInt32] = []
            for (row, cell) in cells.enumerated() {
                switch cell {
                case .missing: missing.append(UInt32(row))
                case .string(let text): values[row] = text
                case .bool(let flag):
                    mismatches += 1
                    missing.append(UInt32(row))
                    report(row, String(flag))
                case .double(let number):
                    mismatches += 1
                    missing.append(UInt32(row))
                    report(row, String(number))
                }
            }
            result.strings = .with {
                $0.values = values
                $0.missingRows = missing
            }
        }
        return (result, mismatches)
    }
}

enum Cell {
    case missing
    case double(Double)
    case string(String)
    case bool(Bool)
}

extension Infranaut_V1_Column {
    /// The feature type this column's values carry.
    public var featureType: Infranaut_V1_FeatureType {
        switch values {
        case .doubles: .double
        case .bools: .bool
        case .strings, .none: .string
        }
    }

    /// Whether no row of the column carries a value.
    public var isAllMissing: Bool {
        switch values {
        case .doubles(let column): column.values.allSatisfy(\.isNaN)
        case .strings(let column): Set(column.missingRows).count >= column.values.count
        case .bools(let column): Set(column.missingRows).count >= column.values.count
        case .none: true
        }
    }

    var cells: [Cell] {
        switch values {
        case .doubles(let column):
            return column.values.map { $0.isNaN ? .missing : .double($0) }
        case .strings(let column):
            let missing = MissingRows(column.missingRows, count: column.values.count)
            return column.values.enumerated().map { missing.contains($0.offset) ? .missing : .string($0.element) }
        case .bools(let column):
            let missing = MissingRows(column.missingRows, count: column.values.count)
            return column.values.enumerated().map { missing.contains($0.offset) ? .missing : .bool($0.element) }
        case .none:
            return []
        }
    }
}

extension Infranaut_V1_FeatureType {
    /// The type's name as shown to users: double, string or bool.
    public var wireName: String {
        switch self {
        case .double: "double"
        case .string: "string"
        case .bool: "bool"
        default: "unknown"
        }
    }
}

extension String {
    var trimmingSpaces: Substring {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" })!
        return self[first...last]
    }
}
