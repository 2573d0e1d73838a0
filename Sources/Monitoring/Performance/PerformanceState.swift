/// What a model's task makes of a prediction and its label (docs/performance.md).
public enum PerformanceTask: Sendable, Hashable {
    /// The prediction is P(positive) in [0, 1] (a boolean counts as 1 or 0); the label is 1 or 0,
    /// true or false, or the text "1", "0", "true", "false"; the predicted class is 1 when the
    /// score is at least `threshold`.
    case binary(threshold: Double)
    /// Prediction and label are class names: text, a boolean's "true"/"false", or a number (an
    /// integral one written without a fraction). Only the listed classes count.
    case multiclass(classes: [String])
    /// Prediction and label are finite numbers.
    case regression
}

/// Mergeable performance of one window (or series): the task's state over the rows that carried
/// both a prediction and a label, and the count of rows whose pair could not be read for the task.
///
/// Rows without a label are not counted at all (unlabelled, not unusable). A labelled row without
/// a usable prediction, or with a label the task cannot read (a 2 for a binary model, a class not
/// listed), counts in ``unusableRows`` and changes nothing else.
public struct PerformanceState: Sendable, Hashable {
    public let task: PerformanceTask
    public internal(set) var unusableRows: UInt64 = 0
    public internal(set) var classification: ClassificationState?
    public internal(set) var regression: RegressionState?

    public init(task: PerformanceTask) {
        self.task = task
        switch task {
        case .binary: classification = ClassificationState(classCount: 2)
        case .multiclass(let classes):
            // Hard predictions only: no score histograms to fill (one bin each keeps them empty and
            // small). The confusion matrix is K² counters per window; specs list at most 50 classes.
            classification = ClassificationState(classCount: Swift.max(2, classes.count), binCount: 1)
        case .regression: regression = RegressionState()
        }
    }

    /// A binary model's labelled scores, positives and negatives per bin: what a reference
    /// calibrates estimates with (``PerformanceEstimator``); nil for other tasks.
    public var labelledScores: ScoreHistogram? {
        guard case .binary = task else { return nil }
        return classification?.histograms.first
    }

    /// Rows joined: those whose pair was added.
    public var labelledRows: UInt64 {
        if let classification { return classification.confusion.reduce(0, &+) }
        return regression?.count ?? 0
    }

    /// Adds the rows `rows` of a batch, pairing `prediction` with `label` row by row.
    mutating func add(prediction: PreparedColumn?, label: PreparedColumn, rows: [Int]) {
        for r in rows {
            // A label whose value did not fit the column's type was sent, but cannot be read.
            if label.isMismatch(r) {
                unusableRows &+= 1
                continue
            }
            guard let actual = Self.cell(label, r) else { continue }  // unlabelled
            guard let predicted = prediction.flatMap({ Self.cell($0, r) }), add(actual: actual, predicted: predicted)
            else {
                unusableRows &+= 1
                continue
            }
        }
    }

    /// Counts `rows` labelled rows as unusable.
    public mutating func addUnusable(_ rows: UInt64) { unusableRows &+= rows }

    /// Adds another window's state when it is for the same task; otherwise counts its rows as
    /// unusable here (a late label whose window was opened for another task).
    public mutating func absorb(_ other: PerformanceState) {
        if other.task == task {
            merge(other)
        } else {
            unusableRows &+= other.labelledRows &+ other.unusableRows
        }
    }

    /// Counts the labelled rows of `rows` as unusable: their window counts for another task (the
    /// spec's task, threshold or classes changed while it was open).
    mutating func addUnusable(label: PreparedColumn, rows: [Int]) {
        for r in rows where label.isMismatch(r) || Self.cell(label, r) != nil { unusableRows &+= 1 }
    }

    /// Adds one labelled pair; false when the task cannot read it (nothing is added then: the
    /// caller counts it with ``addUnusable(_:)``).
    @discardableResult
    public mutating func add(actual: Cell, predicted: Cell) -> Bool {
        switch task {
        case .binary(let threshold):
            guard let y = actual.binaryLabel, let score = predicted.number else { return false }
            return classification!.add(actual: y, score: score, threshold: threshold)
        case .multiclass(let classes):
            guard let a = classes.firstIndex(of: actual.className), let p = classes.firstIndex(of: predicted.className)
            else { return false }
            return classification!.add(actual: a, predicted: p)
        case .regression:
            guard let y = actual.number, let yhat = predicted.number else { return false }
            return regression!.add(actual: y, predicted: yhat)
        }
    }

    /// Merges `other`, which must be of the same task.
    public mutating func merge(_ other: PerformanceState) {
        precondition(other.task == task, "cannot merge the performance of different tasks")
        unusableRows &+= other.unusableRows
        if let o = other.classification { classification!.merge(o) }
        if let o = other.regression { regression!.merge(o) }
    }

    /// The realized metrics by name (docs/performance.md lists them), for ``WindowPerformance``.
    /// Empty while no row is labelled.
    public var metrics: [(name: String, value: Double)] {
        guard labelledRows > 0 else { return [] }
        var out: [(name: String, value: Double)] = []
        switch task {
        case .binary:
            let s = classification!
            let m = s.metrics
            out += [
                ("accuracy", m.accuracy), ("precision", m.perClass[1].precision), ("recall", m.perClass[1].recall),
                ("f1", m.perClass[1].f1), ("tn", Double(s.count(actual: 0, predicted: 0))),
                ("fp", Double(s.count(actual: 0, predicted: 1))), ("fn", Double(s.count(actual: 1, predicted: 0))),
                ("tp", Double(s.count(actual: 1, predicted: 1))),
            ]
            if let v = m.rocAUC { out.append(("roc_auc", v)) }
            if let v = m.averagePrecision { out.append(("pr_auc", v)) }
            if let v = m.logLoss { out.append(("log_loss", v)) }
            if let v = m.brier { out.append(("brier", v)) }
            if let v = s.expectedCalibrationError { out.append(("ece", v)) }
        case .multiclass(let classes):
            let m = classification!.metrics
            out += [("accuracy", m.accuracy), ("macro_f1", m.macro.f1), ("weighted_f1", m.weighted.f1)]
            for (k, name) in classes.enumerated() where k < m.perClass.count {
                out.append(("precision.\(name)", m.perClass[k].precision))
                out.append(("recall.\(name)", m.perClass[k].recall))
            }
        case .regression:
            let m = regression!.metrics
            out += [
                ("mae", m.mae), ("rmse", m.rmse), ("mape", m.mape), ("r2", m.r2), ("error_p50", m.errorP50),
                ("error_p90", m.errorP90), ("error_p99", m.errorP99),
            ]
        }
        return out
    }

    /// The result's performance part.
    public var result: WindowPerformance {
        WindowPerformance(metrics: metrics, labelledRows: labelledRows, unusableRows: unusableRows)
    }

    // MARK: Reading cells

    /// One cell of a column as the task reads it.
    public enum Cell: Sendable, Hashable {
        case number(Double)
        case text(String)
        case bool(Bool)

        public var number: Double? {
            switch self {
            case .number(let v): v.isFinite ? v : nil
            case .bool(let b): b ? 1 : 0
            case .text: nil
            }
        }

        public var binaryLabel: Int? {
            switch self {
            case .number(let v): v == 1 ? 1 : v == 0 ? 0 : nil
            case .bool(let b): b ? 1 : 0
            case .text(let t):
                switch t.lowercased() {
                case "1", "true": 1
                case "0", "false": 0
                default: nil
                }
            }
        }

        var className: String {
            switch self {
            case .number(let v): v.rounded() == v && abs(v) < 1e15 ? String(Int64(v)) : String(v)
            case .text(let t): t
            case .bool(let b): b ? "true" : "false"
            }
        }
    }

    /// Row `r` of `column`; nil when it is missing (NaN for numbers), or its type did not fit.
    static func cell(_ column: PreparedColumn, _ r: Int) -> Cell? {
        if column.isMismatch(r) || column.isMissing(r) { return nil }
        switch column.values {
        case .numbers(let v): return v[r].isNaN ? nil : .number(v[r])
        case .strings(let v): return .text(v[r])
        case .bools(let v): return .bool(v[r])
        }
    }
}

extension WindowColumn {
    /// Each row as a performance pair reads it: nil where it is missing or did not fit the
    /// column's type.
    public func performanceCells(rowCount: Int) -> [PerformanceState.Cell?] {
        let prepared = PreparedColumn(self, rowCount: rowCount)
        return (0..<rowCount).map { PerformanceState.cell(prepared, $0) }
    }
}
