/// Data-quality figures of one column in the current window, optionally against a reference.
public struct ColumnQuality: Sendable, Hashable {
    public var name: String
    public var type: ColumnType
    /// All values offered (including missing ones).
    public var total: UInt64
    /// Empty, null or NaN values.
    public var missing: UInt64
    /// `missing / total` (0 when empty).
    public var missingRate: Double
    /// ±infinity values (numeric columns).
    public var nonFinite: UInt64
    /// Values the ingest path could not read as the declared type.
    public var typeMismatches: UInt64
    /// Numeric: estimated number of values outside the reference's [min, max] (error ≤ 2ε·count
    /// from the sketch; exact when nothing is out of range).
    public var outOfRange: Double?
    /// Categorical: number of categories never seen in the reference, and how many values carry
    /// them (exact when both frequent-item summaries are exact).
    public var newCategories: Int?
    public var newCategoryValues: UInt64?
    /// Estimated distinct values (categorical; HyperLogLog, 1.6 % standard error).
    public var distinctEstimate: Double?
}

/// Columns present in one list but not the other.
public struct SchemaDifference: Sendable, Hashable {
    /// Expected columns that are absent.
    public var missing: [String]
    /// Columns present but not expected.
    public var added: [String]
    public var isEmpty: Bool { missing.isEmpty && added.isEmpty }
}

public enum DataQuality {
    /// Quality figures of `current`, compared with `reference` when given.
    public static func column(_ current: ColumnProfile, reference: ColumnProfile? = nil) -> ColumnQuality {
        var q = ColumnQuality(
            name: current.name, type: current.type, total: 0, missing: 0, missingRate: 0,
            nonFinite: 0, typeMismatches: current.typeMismatches)
        switch current.content {
        case .numeric(let p):
            q.total = p.moments.total
            q.missing = p.moments.missing
            q.nonFinite = p.moments.nonFinite
            if case .numeric(let r)? = reference?.content, r.moments.count > 0 {
                q.outOfRange = p.countOutside(r.moments.min...r.moments.max)
            }
        case .categorical(let p):
            q.total = p.total
            q.missing = p.missing
            q.distinctEstimate = p.distinct.estimate
            if let reference {
                let r = reference.asCategorical
                let unseen = p.frequent.counts.filter { r.frequent.counts[$0.key] == nil }
                q.newCategories = unseen.count
                q.newCategoryValues = unseen.values.reduce(0, &+)
            }
        }
        q.missingRate = q.total > 0 ? Double(q.missing) / Double(q.total) : 0
        return q
    }

    /// Compares actual column names with the expected schema (order ignored).
    public static func schema(expected: [String], actual: [String]) -> SchemaDifference {
        let e = Set(expected), a = Set(actual)
        return SchemaDifference(missing: expected.filter { !a.contains($0) }, added: actual.filter { !e.contains($0) })
    }
}

/// Counts duplicate ids (for example prediction ids) within a window, mergeable across shards.
///
/// Keeps the set of 64-bit ``stableHash64(_:)`` hashes of the ids seen: 8 bytes per distinct id
/// (plus hash-set overhead). Two different ids collide with probability about n²/2^65
/// (≈ 1e-7 for two million ids), which would count one false duplicate.
public struct DuplicateCounter: Sendable, Hashable {
    var seen: Set<UInt64> = []
    /// Ids offered.
    public private(set) var count: UInt64 = 0

    public init() {}

    /// Adds an id; returns `true` if it was already seen in this window.
    @discardableResult
    public mutating func add(_ id: String) -> Bool {
        count &+= 1
        return !seen.insert(stableHash64(id)).inserted
    }

    /// Ids seen more than once (each repeat counts once).
    public var duplicates: UInt64 { count - UInt64(seen.count) }
    public var distinct: Int { seen.count }

    public mutating func merge(_ other: DuplicateCounter) {
        count &+= other.count
        seen.formUnion(other.seen)
    }
}
