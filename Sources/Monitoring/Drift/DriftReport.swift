/// Drift of a whole dataset: one ``ColumnDrift`` per column present on both sides, in the
/// reference's column order, and the share of drifting columns.
public struct DriftReport: Sendable, Hashable {
    public var columns: [ColumnDrift]
    /// Columns that drift.
    public var driftedCount: Int
    /// `driftedCount / columns.count` (0 when there are no columns).
    public var driftShare: Double
    /// True when `driftShare ≥ options.datasetDriftShare` (default 0.5, as Evidently).
    public var datasetDrift: Bool
    /// Column names present on one side only (not compared).
    public var onlyInReference: [String]
    public var onlyInCurrent: [String]

    /// Compares current column profiles with reference ones, matching columns by name.
    /// - Parameters:
    ///   - reference: baseline profiles, e.g. from ``ColumnProfileBuilder/build()``.
    ///   - current: profiles of the data to check.
    ///   - method: the deciding measure for every column (`auto` chooses per column).
    public static func compute(
        reference: [ColumnProfile], current: [ColumnProfile],
        method: DriftMethod = .auto, options: DriftOptions = DriftOptions()
    ) -> DriftReport {
        var byName: [String: ColumnProfile] = [:]
        for c in current { byName[c.name] = c }
        var columns: [ColumnDrift] = []
        var onlyInReference: [String] = []
        for r in reference {
            guard let c = byName[r.name] else {
                onlyInReference.append(r.name)
                continue
            }
            columns.append(ColumnDrift.compute(reference: r, current: c, method: method, options: options))
        }
        let referenceNames = Set(reference.map(\.name))
        let onlyInCurrent = current.map(\.name).filter { !referenceNames.contains($0) }
        let drifted = columns.filter(\.drift).count
        let share = columns.isEmpty ? 0 : Double(drifted) / Double(columns.count)
        return DriftReport(
            columns: columns, driftedCount: drifted, driftShare: share,
            datasetDrift: !columns.isEmpty && share >= options.datasetDriftShare,
            onlyInReference: onlyInReference, onlyInCurrent: onlyInCurrent)
    }
}
