/// The event-time windows of one model: a pure value fed with its applied ops (batches and
/// processing-time ticks) that returns the windows that closed.
///
/// Deterministic: the result depends only on the settings, the ops and their order, so every
/// replica replaying the same op log (or restoring the same ``serialized()`` bytes and replaying
/// the rest) returns the same windows, byte for byte. No wall clock, no unseeded randomness.
///
/// Invariants (docs/windows.md):
/// - A window `[start, start + size)` is open until ``closedBeforeMs`` reaches its end; then it is
///   returned exactly once and never reopens. ``closedBeforeMs`` never decreases.
/// - The watermark is the largest accepted event time minus the lateness; after each batch
///   ``closedBeforeMs`` is at least the watermark. A batch is routed against the value before it,
///   then the watermark advances, so the rows of one batch are never late against each other.
/// - Rows for a closed window are late: counted per window key in the update, never profiled.
/// - Rows more than ``WindowSettings/maxEventAheadMs`` ahead of the op's processing time, and rows
///   that would open more than ``WindowSettings/maxOpenWindows`` (start, version) pairs, are
///   rejected and counted, so open state is bounded whatever the event times. Rows refused by the
///   window cap still move the watermark (future ones do not), so a full model keeps closing.
public struct ModelWindows: Sendable, Hashable {
    public let settings: WindowSettings
    /// Open windows, whole-model and per segment.
    var open: [WindowKey: WindowAccumulator] = [:]
    /// Largest accepted event time.
    public internal(set) var maxEventMs: Int64?
    /// Windows ending at or before this are closed.
    public internal(set) var closedBeforeMs: Int64 = .min
    /// Processing time of the last op that carried accepted rows.
    public internal(set) var lastDataMs: Int64?
    /// The task labelled rows count for (from the spec; not part of the serialized state, which the
    /// spec restores). nil: labels are not paired.
    public var performanceTask: PerformanceTask?
    /// Per segment column (in settings order), the tracked values in order of first arrival.
    var segmentValues: [[String]]
    var references: ReferenceState

    public init(settings: WindowSettings) {
        self.settings = settings
        segmentValues = settings.segmentColumns.map { _ in [] }
        references = ReferenceState()
    }

    /// Largest accepted event time minus the allowed lateness.
    public var watermarkMs: Int64? { maxEventMs.map { $0 &- settings.latenessMs } }

    /// Number of open windows (all series).
    public var openWindowCount: Int { open.count }

    /// Applies one batch.
    /// - Parameters:
    ///   - batch: the rows; validated here.
    ///   - processingTimeMs: the op's time from the op log (event time of rows without one).
    /// - Returns: the windows this batch closed, late rows and rejected rows.
    ///   - placing: fill ``WindowUpdate/placements`` (the windows each row counted in).
    public mutating func add(_ batch: WindowBatch, processingTimeMs: Int64, placing: Bool = false)
        throws(WindowBatch.ShapeError) -> WindowUpdate
    {
        try batch.validate()
        var update = WindowUpdate()
        guard batch.rowCount > 0 else { return update }
        let prepared = PreparedBatch(batch)
        let size = settings.sizeMs
        let latestAllowed = processingTimeMs &+ settings.maxEventAheadMs

        // Route every row to a (start, version) slot, or count it late or rejected.
        var slots: [Slot: [Int]] = [:]
        var late: [Slot: [Int]] = [:]
        var newest = maxEventMs
        var inTime = [Bool](repeating: true, count: batch.rowCount)
        for row in 0..<batch.rowCount {
            let t = batch.eventTimesMs?[row] ?? processingTimeMs
            if t > latestAllowed {
                update.rejected.future &+= 1
                inTime[row] = false
                continue
            }
            let start = settings.windowStart(t)
            let slot = Slot(startMs: start, version: batch.version(of: row))
            if start &+ size <= closedBeforeMs {
                late[slot, default: []].append(row)
            } else {
                slots[slot, default: []].append(row)
            }
            newest = Swift.max(newest ?? t, t)
        }
        let segments = segmentAssignments(batch, tracking: inTime)
        for (slot, rows) in late.sorted(by: { $0.key < $1.key }) {
            for part in SlotPlan(slot, rows: rows, segments: segments, columns: settings.segmentColumns).parts {
                update.lateRows[part.key, default: 0] &+= UInt64(part.rows.count)
            }
        }
        if placing { update.placements = [[WindowKey]](repeating: [], count: batch.rowCount) }
        var accepted = false
        let openSlots = Set(
            open.keys.filter { $0.segment == nil }.map { Slot(startMs: $0.startMs, version: $0.version) })
        var slotCount = openSlots.count
        for (slot, rows) in slots.sorted(by: { $0.key < $1.key }) {
            if !openSlots.contains(slot) {
                guard slotCount < settings.maxOpenWindows else {
                    update.rejected.windowLimit &+= UInt64(rows.count)
                    continue
                }
                slotCount += 1
            }
            accepted = true
            let plan = SlotPlan(slot, rows: rows, segments: segments, columns: settings.segmentColumns)
            let sorted = SortedSlot(prepared, plan: plan)
            for part in plan.parts {
                open[part.key, default: WindowAccumulator()].add(
                    prepared, rows: part.rows, sorted: (sorted, part), task: performanceTask)
                references.accumulate(
                    part.key.series, prepared, rows: part.rows, eventTimes: batch.eventTimesMs,
                    processingTimeMs: processingTimeMs, settings: settings, task: performanceTask)
                if placing { for r in part.rows { update.placements[r].append(part.key) } }
            }
        }
        if accepted || !late.isEmpty {
            maxEventMs = newest
            lastDataMs = processingTimeMs
        }
        if let w = watermarkMs, w > closedBeforeMs { closedBeforeMs = w }
        let closedBefore = closedBeforeMs
        update.closed = close { $0.startMs &+ size <= closedBefore }
        return update
    }

    /// Adds a label joined to a prediction that counted in the windows `keys` (the whole model's,
    /// then its segments'): to those still open. Returns whether the task could pair it, and the
    /// keys that are not open (closed since: the caller adds the pair to their stored results).
    public mutating func addLabelled(
        keys: [WindowKey], actual: PerformanceState.Cell, predicted: PerformanceState.Cell
    ) -> (usable: Bool, closed: [WindowKey]) {
        guard let task = performanceTask else { return (false, []) }
        var usable = true
        var closed: [WindowKey] = []
        for key in keys {
            if open[key] != nil {
                usable = open[key]!.addLabelled(actual: actual, predicted: predicted, task: task) && usable
            } else {
                closed.append(key)
            }
        }
        return (usable, closed)
    }

    /// Applies a processing-time tick: when no rows arrived for size + lateness, every open window
    /// closes (so a model whose traffic stopped still gets its last windows), and rows for them
    /// are late from then on.
    public mutating func tick(processingTimeMs: Int64) -> WindowUpdate {
        var update = WindowUpdate()
        guard let last = lastDataMs, processingTimeMs &- last >= settings.idleCloseMs, !open.isEmpty else {
            return update
        }
        update.closed = close { _ in true }
        if let end = update.closed.map(\.window.endMs).max(), end > closedBeforeMs { closedBeforeMs = end }
        return update
    }

    /// The open windows as they are now (evaluated so far), oldest first, each with the reference
    /// it would be compared with if it closed now.
    public func openWindows(where wanted: (WindowKey) -> Bool = { _ in true }) -> [EvaluableWindow] {
        open.keys.filter(wanted).sorted().map { key in
            EvaluableWindow(
                window: snapshot(key, open[key]!, isOpen: true),
                reference: references.reference(for: key, settings: settings))
        }
    }

    /// Stores an uploaded reference for `version` (used with ``ReferencePolicy/uploaded``).
    /// The labelled scores of the reference `key`'s window is compared with (nil without one).
    public func labelledReference(for key: WindowKey) -> ScoreHistogram? {
        references.reference(for: key, settings: settings)?.labelled
    }

    public mutating func setUploadedReference(_ reference: ReferenceProfile, version: String) {
        references.setUploaded(reference, version: version, limit: settings.maxReferenceVersions)
    }

    /// Removes and returns the windows matching `predicate`, oldest first, each with its reference;
    /// the previous-window reference of each series moves on to it.
    private mutating func close(where predicate: (WindowKey) -> Bool) -> [EvaluableWindow] {
        let keys = open.keys.filter(predicate).sorted()
        var closed: [EvaluableWindow] = []
        closed.reserveCapacity(keys.count)
        for key in keys {
            let acc = open.removeValue(forKey: key)!
            let window = snapshot(key, acc, isOpen: false)
            closed.append(
                EvaluableWindow(window: window, reference: references.reference(for: key, settings: settings)))
            references.windowClosed(key, acc, settings: settings)
        }
        return closed
    }

    private func snapshot(_ key: WindowKey, _ acc: WindowAccumulator, isOpen: Bool) -> WindowSnapshot {
        WindowSnapshot(
            key: key, endMs: key.startMs &+ settings.sizeMs, isOpen: isOpen, rows: acc.rows,
            columns: acc.profiles, prediction: acc.prediction?.profile, performance: acc.performance,
            scores: acc.scores)
    }

    /// Each row's segment code in each segment column (`nil` when the batch lacks the column),
    /// tracking new values up to the cap in row order. Only rows marked in `tracking` may claim a
    /// place: rejected rows must not fill the cap. A code is an index into ``segmentValues``, or
    /// ``SegmentCodes/missing`` or ``SegmentCodes/other``.
    private mutating func segmentAssignments(_ batch: WindowBatch, tracking: [Bool]) -> SegmentCodes {
        let codes = settings.segmentColumns.enumerated().map { c, name -> [Int32]? in
            guard let column = batch.columns.first(where: { $0.name == name }) else { return nil }
            let prepared = PreparedColumn(column, rowCount: batch.rowCount)
            var lookup: [String: Int32] = [:]
            for (i, v) in segmentValues[c].enumerated() { lookup[v] = Int32(i) }
            return (0..<batch.rowCount).map { row in
                guard let text = Self.segmentText(prepared, row) else { return SegmentCodes.missing }
                if let known = lookup[text] { return known }
                if tracking[row], segmentValues[c].count < settings.maxSegmentValues {
                    let code = Int32(segmentValues[c].count)
                    segmentValues[c].append(text)
                    lookup[text] = code
                    return code
                }
                return SegmentCodes.other
            }
        }
        return SegmentCodes(codes: codes, values: segmentValues)
    }

    private static func segmentText(_ column: PreparedColumn, _ row: Int) -> String? {
        if column.isMissing(row) || column.isMismatch(row) { return nil }
        switch column.values {
        case .numbers(let v): return v[row].isNaN ? nil : categoryLabel(v[row])
        case .strings(let v): return v[row]
        case .bools(let v): return v[row] ? "true" : "false"
        }
    }
}

/// A window start and a model version: the unit the open-window cap counts.
struct Slot: Hashable, Comparable {
    var startMs: Int64
    var version: String

    static func < (a: Slot, b: Slot) -> Bool {
        a.startMs != b.startMs ? a.startMs < b.startMs : a.version < b.version
    }
}

extension WindowBatch {
    func version(of row: Int) -> String {
        switch versions {
        case .batch(let v): return v
        case .perRow(let v): return v[row]
        }
    }
}

/// What one op did to a model's windows.
public struct WindowUpdate: Sendable, Hashable {
    /// Windows that closed, oldest first; evaluate and store each.
    /// With `placing`: per batch row, the windows it counted in (the whole model's first, then
    /// one per segment column); empty for rows that were late or refused.
    public var placements: [[WindowKey]] = []
    public var closed: [EvaluableWindow] = []
    /// Rows that arrived after their window closed, per window key; add them to the stored
    /// results (``WindowResult/lateRows``).
    public var lateRows: [WindowKey: UInt64] = [:]
    public var rejected = RejectedRows()

    public init() {}

    /// Late rows, oldest window first.
    public var lateRowsInOrder: [(key: WindowKey, rows: UInt64)] {
        lateRows.sorted { $0.key < $1.key }.map { (key: $0.key, rows: $0.value) }
    }
}

/// Rows refused by the bounds of ``WindowSettings``, by reason.
public struct RejectedRows: Sendable, Hashable {
    /// Event time beyond processing time + ``WindowSettings/maxEventAheadMs``.
    public var future: UInt64 = 0
    /// Would have opened more than ``WindowSettings/maxOpenWindows`` (start, version) pairs.
    public var windowLimit: UInt64 = 0

    public init() {}

    public var total: UInt64 { future &+ windowLimit }
}

/// A window's profiles as they are (open) or as they were when it closed.
public struct WindowSnapshot: Sendable, Hashable {
    public var key: WindowKey
    public var endMs: Int64
    public var isOpen: Bool
    public var rows: UInt64
    /// Feature (and segment) column profiles, in order of first arrival.
    public var columns: [ColumnProfile]
    public var prediction: ColumnProfile?
    /// The performance of its labelled rows (nil when no row carried a label).
    public var performance: PerformanceState?
    /// A binary model's scores, for the estimated performance (nil for other tasks).
    public var scores: PredictionScores?

    public var startMs: Int64 { key.startMs }
}

/// A window with the reference its policy assigns it (`nil` when none exists yet).
public struct EvaluableWindow: Sendable, Hashable {
    public var window: WindowSnapshot
    public var reference: ReferenceProfile?
}
