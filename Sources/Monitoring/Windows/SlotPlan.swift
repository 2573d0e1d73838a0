/// The windows one slot's rows (one window start, one version) go to: the whole-model window with
/// every row, then, for each segment column the batch carries, one window per segment value.
struct SlotPlan {
    /// One window and its rows (batch row indices, ascending).
    struct Part {
        var key: WindowKey
        var rows: [Int]
        /// The segment column (settings order) whose group this is; `nil` for the whole model.
        var segmentColumn: Int?
        /// The group's index among the column's groups (ascending segment value).
        var group: Int
    }

    var parts: [Part]
    /// Per segment column: the group of each of the slot's rows (by position in the slot's row
    /// list), or `nil` when the batch lacks the column.
    var groupOf: [[Int32]?] = []
    /// Per segment column: its number of groups.
    var groupCounts: [Int] = []

    /// Splits `rows` by their segment codes.
    init(_ slot: Slot, rows: [Int], segments: SegmentCodes, columns: [String]) {
        parts = [
            Part(
                key: WindowKey(startMs: slot.startMs, series: SeriesKey(version: slot.version)), rows: rows,
                segmentColumn: nil, group: 0)
        ]
        for (c, column) in columns.enumerated() {
            guard let codes = segments.codes[c] else {
                groupOf.append(nil)
                groupCounts.append(0)
                continue
            }
            // Groups numbered in order of first appearance (codes index a small table), then
            // renumbered by segment value.
            var slotOfCode = [Int32](repeating: -1, count: segments.values[c].count + 2)
            var distinct: [Int32] = []
            var raw = [Int32](repeating: 0, count: rows.count)
            for (i, r) in rows.enumerated() {
                let code = Int(codes[r]) + 2
                if slotOfCode[code] < 0 {
                    slotOfCode[code] = Int32(distinct.count)
                    distinct.append(codes[r])
                }
                raw[i] = slotOfCode[code]
            }
            let values = distinct.map { segments.value(column: c, code: $0) }
            let order = values.indices.sorted { values[$0] < values[$1] }
            var rank = [Int32](repeating: 0, count: values.count)
            for (k, first) in order.enumerated() { rank[first] = Int32(k) }
            var members = [[Int]](repeating: [], count: values.count)
            let groups = raw.map { rank[Int($0)] }
            for (i, r) in rows.enumerated() { members[Int(groups[i])].append(r) }
            for (k, first) in order.enumerated() {
                let series = SeriesKey(version: slot.version, segment: Segment(column: column, value: values[first]))
                parts.append(
                    Part(
                        key: WindowKey(startMs: slot.startMs, series: series), rows: members[k], segmentColumn: c,
                        group: k))
            }
            groupOf.append(groups)
            groupCounts.append(values.count)
        }
    }
}

/// Each batch row's segment in each segment column, as small integer codes.
struct SegmentCodes {
    static let missing: Int32 = -1
    static let other: Int32 = -2

    /// Per segment column, one code per batch row; `nil` when the batch lacks the column.
    var codes: [[Int32]?]
    /// Per segment column, the tracked values the codes index.
    var values: [[String]]

    func value(column c: Int, code: Int32) -> SegmentValue {
        switch code {
        case Self.missing: return .missing
        case Self.other: return .other
        default: return .value(values[c][Int(code)])
        }
    }
}

/// A slot's numeric values sorted once for all its windows (docs/benchmarks.md, issue 11): the
/// whole-model window takes each numeric column's finite values in ascending order, and a segment
/// column's windows take the same order split by group (a stable scatter keeps each group
/// ascending), so no window sorts again.
struct SortedSlot {
    private struct Column {
        var whole: [Double]
        /// Per segment column: the values grouped (group `g` at `offsets[g] ..< offsets[g + 1]`).
        var byGroup: [(values: [Double], offsets: [Int])?]
    }

    /// Per column of the batch (``PreparedBatch/columns``, then the prediction); `nil` unless numeric.
    private var columns: [Column?]

    init(_ batch: PreparedBatch, plan: SlotPlan) {
        let rows = plan.parts[0].rows
        columns = (batch.columns + (batch.prediction.map { [$0] } ?? [])).map { column in
            guard case .numbers(let v) = column.values else { return nil }
            var values: [Double] = [], positions: [Int32] = []
            values.reserveCapacity(rows.count)
            positions.reserveCapacity(rows.count)
            for (i, r) in rows.enumerated() where v[r].isFinite {
                values.append(v[r])
                positions.append(Int32(i))
            }
            values.withUnsafeMutableBufferPointer { vs in
                positions.withUnsafeMutableBufferPointer { radixSortFinite(vs, carrying: $0) }
            }
            let byGroup = zip(plan.groupOf, plan.groupCounts).map { groups, count -> ([Double], [Int])? in
                guard let groups else { return nil }
                var offsets = [Int](repeating: 0, count: count + 1)
                for p in positions { offsets[Int(groups[Int(p)]) + 1] += 1 }
                for g in 0..<count { offsets[g + 1] += offsets[g] }
                var next = offsets
                var grouped = [Double](repeating: 0, count: values.count)
                for (x, p) in zip(values, positions) {
                    let g = Int(groups[Int(p)])
                    grouped[next[g]] = x
                    next[g] += 1
                }
                return (grouped, offsets)
            }
            return Column(whole: values, byGroup: byGroup)
        }
    }

    /// The ascending finite values of column `index` (the prediction's index is the batch's
    /// column count) for `part`'s rows; `nil` for a column that is not numeric.
    func sortedFinite(column index: Int, part: SlotPlan.Part) -> ArraySlice<Double>? {
        guard let column = columns[index] else { return nil }
        guard let c = part.segmentColumn else { return column.whole[...] }
        let (values, offsets) = column.byGroup[c]!
        return values[offsets[part.group]..<offsets[part.group + 1]]
    }
}
