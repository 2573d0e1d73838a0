/// The profiles one window (or one reference in progress) accumulates: one mergeable profile per
/// column, the prediction's, and the row count.
///
/// Invariant: every column's profile holds exactly ``rows`` values, missing ones included. A
/// column absent from a batch counts that batch's rows as missing, and a column that first
/// appears in a window with rows already counted starts with that many missing values, so
/// missing rates compare across windows whatever the batches carried.
struct WindowAccumulator: Sendable, Hashable {
    var rows: UInt64 = 0
    /// Columns in order of first arrival.
    var columns: [ColumnAccumulator] = []
    var index: [String: Int] = [:]
    var prediction: ColumnAccumulator?
    /// The performance of the rows that carried a label, for the model's task. It keeps the task
    /// it started with: labelled rows that arrive after the spec's task, threshold or classes
    /// changed count as unusable in it, and as usual in windows opened after the change.
    var performance: PerformanceState?
    /// A binary model's scores, labelled or not, for the estimated performance; the window keeps
    /// the threshold it opened with.
    var scores: PredictionScores?

    /// Adds the rows `rows` (ascending indices) of `batch`; `sorted`, when given, holds the
    /// numeric columns' values of these rows already sorted (the rows of `sorted.part`). Rows with a
    /// label count in the performance for `task`.
    mutating func add(
        _ batch: PreparedBatch, rows subset: [Int], sorted: (slot: SortedSlot, part: SlotPlan.Part)? = nil,
        task: PerformanceTask? = nil
    ) {
        guard !subset.isEmpty else { return }
        let n = UInt64(subset.count)
        var seen = [Bool](repeating: false, count: columns.count)
        for (ci, column) in batch.columns.enumerated() {
            let i: Int
            if let existing = index[column.name] {
                i = existing
            } else {
                i = columns.count
                index[column.name] = i
                columns.append(ColumnAccumulator(name: column.name, kind: column.kind, missing: rows))
                seen.append(false)
            }
            if seen[i] { continue }  // a repeated column name: the first one counts
            seen[i] = true
            columns[i].add(
                column, rows: subset, sortedFinite: sorted?.slot.sortedFinite(column: ci, part: sorted!.part))
        }
        for i in columns.indices where !seen[i] { columns[i].addMissing(n) }
        if let p = batch.prediction {
            if prediction == nil { prediction = ColumnAccumulator(name: p.name, kind: p.kind, missing: rows) }
            let sortedFinite = sorted?.slot.sortedFinite(column: batch.columns.count, part: sorted!.part)
            prediction!.add(p, rows: subset, sortedFinite: sortedFinite)
        } else {
            prediction?.addMissing(n)
        }
        if case .binary(let threshold)? = task {
            if let p = batch.prediction {
                if scores == nil { scores = PredictionScores(threshold: threshold) }
                for r in subset {
                    if let score = PerformanceState.cell(p, r)?.number { scores!.add(score: score) }
                }
            }
        } else {
            // The task is no longer a binary classifier's: the window gets no estimate.
            scores = nil
        }
        if let label = batch.label, let task {
            if performance == nil { performance = PerformanceState(task: task) }
            if performance!.task == task {
                performance!.add(prediction: batch.prediction, label: label, rows: subset)
            } else {
                performance!.addUnusable(label: label, rows: subset)
            }
        }
        rows &+= n
    }

    /// Adds one label joined to a prediction of this window after its rows arrived; false when
    /// the pair counts as unusable.
    mutating func addLabelled(actual: PerformanceState.Cell, predicted: PerformanceState.Cell, task: PerformanceTask)
        -> Bool
    {
        if performance == nil { performance = PerformanceState(task: task) }
        if performance!.task == task, performance!.add(actual: actual, predicted: predicted) { return true }
        performance!.addUnusable(1)
        return false
    }

    /// Column profiles in order of first arrival.
    var profiles: [ColumnProfile] { columns.map(\.profile) }
}

/// One column's profile under accumulation, kept as two optionals (exactly one set) so that
/// adding values mutates the sketch in place; mutating through an enum payload copies it.
struct ColumnAccumulator: Sendable, Hashable {
    let name: String
    var numeric: NumericProfile?
    var categorical: CategoricalProfile?
    var typeMismatches: UInt64 = 0

    /// A column whose type is the first batch's: numbers are numeric, text and booleans categorical.
    init(name: String, kind: ColumnType, missing: UInt64) {
        self.name = name
        if kind == .numeric {
            numeric = NumericProfile()
            if missing > 0 { numeric!.addMissing(missing) }
        } else {
            categorical = CategoricalProfile()
            if missing > 0 { categorical!.addMissing(missing) }
        }
    }

    init(_ profile: ColumnProfile) {
        name = profile.name
        typeMismatches = profile.typeMismatches
        switch profile.content {
        case .numeric(let p): numeric = p
        case .categorical(let p): categorical = p
        }
    }

    var profile: ColumnProfile {
        if let numeric { return ColumnProfile(name: name, content: .numeric(numeric), typeMismatches: typeMismatches) }
        return ColumnProfile(name: name, content: .categorical(categorical!), typeMismatches: typeMismatches)
    }

    mutating func addMissing(_ n: UInt64) {
        if numeric != nil { numeric!.addMissing(n) } else { categorical!.addMissing(n) }
    }

    /// Text arrived in a numeric column: the numbers so far become categories (as
    /// ``ColumnProfile/merge(_:)`` and ``ColumnProfileBuilder`` do).
    private mutating func becomeCategorical() {
        guard let n = numeric else { return }
        categorical = CategoricalProfile(converting: n)
        numeric = nil
    }

    /// Adds the rows `subset` of `column`; `sortedFinite`, when given, is their finite values in
    /// ascending order (so a numeric profile need not sort them).
    mutating func add(_ column: PreparedColumn, rows subset: [Int], sortedFinite: ArraySlice<Double>? = nil) {
        for r in subset where column.isMismatch(r) { typeMismatches &+= 1 }
        switch column.values {
        case .numbers(let v):
            if numeric != nil {
                var gathered = [Double](repeating: 0, count: subset.count)
                for (j, r) in subset.enumerated() { gathered[j] = v[r] }
                gathered.withUnsafeBufferPointer { g in
                    if let sortedFinite {
                        sortedFinite.withUnsafeBufferPointer { numeric!.add(contentsOf: g, sortedFinite: $0) }
                    } else {
                        numeric!.add(contentsOf: g)
                    }
                }
            } else {
                for r in subset {
                    if v[r].isNaN { categorical!.addMissing() } else { categorical!.add(categoryLabel(v[r])) }
                }
            }
        case .strings(let v):
            becomeCategorical()
            for r in subset {
                if column.isMissing(r) { categorical!.addMissing() } else { categorical!.add(v[r]) }
            }
        case .bools(let v):
            var trues: UInt64 = 0, falses: UInt64 = 0, missing: UInt64 = 0
            for r in subset {
                if column.isMissing(r) {
                    missing += 1
                } else if v[r] {
                    trues += 1
                } else {
                    falses += 1
                }
            }
            if numeric != nil {
                // A numeric column reads booleans as 1 and 0 (as ColumnProfileBuilder does).
                var gathered = [Double](repeating: 1, count: Int(trues))
                gathered += [Double](repeating: 0, count: Int(falses))
                gathered += [Double](repeating: .nan, count: Int(missing))
                gathered.withUnsafeBufferPointer { numeric!.add(contentsOf: $0) }
            } else {
                if trues > 0 { categorical!.add("true", weight: trues) }
                if falses > 0 { categorical!.add("false", weight: falses) }
                if missing > 0 { categorical!.addMissing(missing) }
            }
        }
    }
}

/// A ``WindowColumn`` with its missing and mismatch rows turned into masks, once per batch.
struct PreparedColumn: Sendable {
    let name: String
    let values: WindowColumn.Values
    let kind: ColumnType
    private let missing: [Bool]?
    private let mismatch: [Bool]?

    init(_ column: WindowColumn, rowCount: Int) {
        name = column.name
        values = column.values
        kind = column.kind
        missing = Self.mask(column.missingRows, rowCount)
        mismatch = Self.mask(column.mismatchRows, rowCount)
    }

    private static func mask(_ rows: [Int], _ count: Int) -> [Bool]? {
        guard !rows.isEmpty else { return nil }
        var m = [Bool](repeating: false, count: count)
        for r in rows { m[r] = true }
        return m
    }

    func isMissing(_ row: Int) -> Bool { missing?[row] ?? false }
    func isMismatch(_ row: Int) -> Bool { mismatch?[row] ?? false }
}

/// A validated batch ready to be split into windows.
struct PreparedBatch: Sendable {
    let columns: [PreparedColumn]
    let prediction: PreparedColumn?
    let label: PreparedColumn?

    init(_ batch: WindowBatch) {
        columns = batch.columns.map { PreparedColumn($0, rowCount: batch.rowCount) }
        prediction = batch.prediction.map { PreparedColumn($0, rowCount: batch.rowCount) }
        label = batch.label.map { PreparedColumn($0, rowCount: batch.rowCount) }
    }
}
