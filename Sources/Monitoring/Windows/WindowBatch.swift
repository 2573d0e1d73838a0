/// One normalised batch of one model's telemetry, columnar, as the window logic reads it.
///
/// Independent of the wire format: the shard converts its protobuf batch into this. Every array
/// has ``rowCount`` elements unless noted.
public struct WindowBatch: Sendable, Hashable {
    /// The model version of the rows.
    public enum Versions: Sendable, Hashable {
        /// One version for every row.
        case batch(String)
        /// One version per row (from the spec's version column).
        case perRow([String])
    }

    public var rowCount: Int
    /// Event time of each row in ms since the epoch; `nil` means every row happened at the op's
    /// processing time.
    public var eventTimesMs: [Int64]?
    public var versions: Versions
    /// Feature columns (and segment columns, which are also profiled when present).
    public var columns: [WindowColumn]
    /// The model's output, profiled like a feature but reported apart.
    public var prediction: WindowColumn?
    /// The true label of rows that carry one inline, paired with the prediction for the window's
    /// performance (``PerformanceState``); not profiled.
    public var label: WindowColumn?

    public init(
        rowCount: Int, eventTimesMs: [Int64]? = nil, versions: Versions = .batch(""), columns: [WindowColumn],
        prediction: WindowColumn? = nil, label: WindowColumn? = nil
    ) {
        self.rowCount = rowCount
        self.eventTimesMs = eventTimesMs
        self.versions = versions
        self.columns = columns
        self.prediction = prediction
        self.label = label
    }

    /// Why a batch cannot be read: an array's length differs from the row count.
    public struct ShapeError: Error, Sendable, Hashable, CustomStringConvertible {
        public var field: String
        public var count: Int
        public var rowCount: Int
        public var description: String { "\(field) has \(count) values for \(rowCount) rows" }
    }

    /// Checks every array against ``rowCount`` and every row index against the rows.
    public func validate() throws(ShapeError) {
        if let t = eventTimesMs, t.count != rowCount {
            throw ShapeError(field: "event times", count: t.count, rowCount: rowCount)
        }
        if case .perRow(let v) = versions, v.count != rowCount {
            throw ShapeError(field: "versions", count: v.count, rowCount: rowCount)
        }
        for c in columns + [prediction, label].compactMap({ $0 }) where !c.fits(rowCount: rowCount) {
            guard c.valueCount == rowCount else {
                throw ShapeError(field: "column \(c.name)", count: c.valueCount, rowCount: rowCount)
            }
            if let bad = (c.missingRows + c.mismatchRows).first(where: { $0 < 0 || $0 >= rowCount }) {
                throw ShapeError(field: "row index of column \(c.name)", count: bad, rowCount: rowCount)
            }
        }
    }
}

extension WindowColumn {
    /// Exactly `rowCount` values, and every listed row index inside them.
    public func fits(rowCount: Int) -> Bool {
        valueCount == rowCount && !(missingRows + mismatchRows).contains { $0 < 0 || $0 >= rowCount }
    }
}

/// One column of a ``WindowBatch``.
public struct WindowColumn: Sendable, Hashable {
    public enum Values: Sendable, Hashable {
        /// Numbers; NaN is missing, ±infinity is counted as non-finite.
        case numbers([Double])
        /// Text; rows listed in ``WindowColumn/missingRows`` are missing.
        case strings([String])
        /// Booleans, profiled as the categories "true" and "false" (or 1 and 0 in a numeric
        /// column); rows in ``WindowColumn/missingRows`` are missing.
        case bools([Bool])
    }

    public var name: String
    public var values: Values
    /// Rows without a value (strings and bools; numbers use NaN).
    public var missingRows: [Int]
    /// Rows whose value did not fit the feature's type; their value is read as missing.
    public var mismatchRows: [Int]

    public init(name: String, values: Values, missingRows: [Int] = [], mismatchRows: [Int] = []) {
        self.name = name
        self.values = values
        self.missingRows = missingRows
        self.mismatchRows = mismatchRows
    }

    public static func numbers(_ name: String, _ values: [Double]) -> WindowColumn {
        WindowColumn(name: name, values: .numbers(values))
    }

    public static func strings(_ name: String, _ values: [String], missingRows: [Int] = []) -> WindowColumn {
        WindowColumn(name: name, values: .strings(values), missingRows: missingRows)
    }

    var valueCount: Int {
        switch values {
        case .numbers(let v): return v.count
        case .strings(let v): return v.count
        case .bools(let v): return v.count
        }
    }

    /// The column's kind as a profile type.
    var kind: ColumnType {
        if case .numbers = values { return .numeric }
        return .categorical
    }
}
