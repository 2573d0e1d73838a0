/// How a column's values are interpreted.
public enum ColumnType: String, Sendable, Hashable, CaseIterable {
    case numeric
    case categorical
}

/// The profile of one named column: numeric or categorical, plus the ingest-side count of
/// values that did not match the column's declared type.
public struct ColumnProfile: Sendable, Hashable {
    public enum Content: Sendable, Hashable {
        case numeric(NumericProfile)
        case categorical(CategoricalProfile)
    }

    public var name: String
    public var content: Content
    /// Values that did not match a declared type (for example text in a column declared numeric);
    /// they are counted here and as missing in the profile.
    public var typeMismatches: UInt64

    public init(name: String, content: Content, typeMismatches: UInt64 = 0) {
        self.name = name
        self.content = content
        self.typeMismatches = typeMismatches
    }

    public var type: ColumnType {
        if case .numeric = content { return .numeric }
        return .categorical
    }

    /// Non-missing (finite, for numeric columns) values.
    public var count: UInt64 {
        switch content {
        case .numeric(let p): return p.moments.count
        case .categorical(let p): return p.count
        }
    }

    /// Missing values (plus non-finite ones for numeric columns).
    public var missing: UInt64 {
        switch content {
        case .numeric(let p): return p.moments.missing + p.moments.nonFinite
        case .categorical(let p): return p.missing
        }
    }

    /// The column as categorical: a numeric profile is converted with exact counts when it has at
    /// most ``NumericProfile/distinctTableLimit`` distinct values, otherwise from the sketch's
    /// retained items and weights (approximate: each count within ε·count).
    public var asCategorical: CategoricalProfile {
        switch content {
        case .categorical(let p): return p
        case .numeric(let p): return CategoricalProfile(converting: p)
        }
    }

    /// Merges another profile of the same column (numeric with categorical gives categorical).
    public mutating func merge(_ other: ColumnProfile) {
        typeMismatches &+= other.typeMismatches
        switch (content, other.content) {
        case (.numeric(var a), .numeric(let b)):
            a.merge(b)
            content = .numeric(a)
        default:
            var a = asCategorical
            a.merge(other.asCategorical)
            content = .categorical(a)
        }
    }
}

extension CategoricalProfile {
    /// A categorical view of a numeric profile (see ``ColumnProfile/asCategorical``).
    public init(converting numeric: NumericProfile) {
        self.init()
        addMissing(numeric.moments.missing + numeric.moments.nonFinite)
        if let table = numeric.distinctValueCounts {
            for (v, c) in table { add(categoryLabel(v), weight: c) }
        } else {
            let d = numeric.sketch.distribution
            var previous = 0.0
            for (v, cum) in zip(d.values, d.cumulative) {
                add(categoryLabel(v), weight: UInt64(cum - previous))
                previous = cum
            }
        }
    }
}

/// The category label of a number: integers without a fraction ("3"), others in Swift's
/// shortest round-trip form ("2.5").
public func categoryLabel(_ x: Double) -> String {
    if x == x.rounded(), Swift.abs(x) < 9.0e15 { return String(Int64(x)) }
    return String(x)
}

/// Builds a ``ColumnProfile`` from a stream of cells.
///
/// With an inferred type (the default) the column is numeric while every non-missing value is a
/// number; the first text or boolean value turns it categorical, and the numbers seen so far
/// become categories (see ``ColumnProfile/asCategorical``). Numbers are buffered and added in
/// batches, so feeding one value at a time costs no allocation.
public struct ColumnProfileBuilder: Sendable {
    public let name: String
    /// The declared type, or `nil` to infer it.
    public let declaredType: ColumnType?
    var numeric: NumericProfile
    var categorical: CategoricalProfile?
    var pending: [Double] = []
    public private(set) var typeMismatches: UInt64 = 0
    static let batchSize = 1024

    public init(name: String, type: ColumnType? = nil) {
        self.name = name
        self.declaredType = type
        numeric = NumericProfile()
        pending.reserveCapacity(Self.batchSize)
        if type == .categorical { categorical = CategoricalProfile() }
    }

    /// Adds a cell that parsed as a number.
    public mutating func add(number x: Double) {
        if categorical == nil {
            pending.append(x)
            if pending.count == Self.batchSize { flush() }
        } else if x.isNaN {
            categorical!.addMissing()
        } else {
            categorical!.add(categoryLabel(x))
        }
    }

    /// Adds many numbers at once.
    public mutating func add(numbers: UnsafeBufferPointer<Double>) {
        if categorical == nil {
            flush()
            numeric.add(contentsOf: numbers)
        } else {
            for x in numbers { add(number: x) }
        }
    }

    /// Adds a non-empty cell that did not parse as a number.
    public mutating func add(string s: String) {
        if declaredType == .numeric {
            typeMismatches &+= 1
            numeric.addMissing()
            return
        }
        becomeCategorical()
        categorical!.add(s)
    }

    /// Adds a boolean cell: 1/0 in a declared-numeric column, "true"/"false" otherwise.
    public mutating func add(bool b: Bool) {
        if declaredType == .numeric {
            add(number: b ? 1 : 0)
        } else {
            becomeCategorical()
            categorical!.add(b ? "true" : "false")
        }
    }

    /// Adds an empty or null cell.
    public mutating func addMissing() {
        if categorical == nil { numeric.addMissing() } else { categorical!.addMissing() }
    }

    private mutating func flush() {
        guard !pending.isEmpty else { return }
        pending.withUnsafeBufferPointer { numeric.add(contentsOf: $0) }
        pending.removeAll(keepingCapacity: true)
    }

    private mutating func becomeCategorical() {
        guard categorical == nil else { return }
        flush()
        categorical = CategoricalProfile(converting: numeric)
        numeric = NumericProfile()
    }

    /// The profile of everything added so far.
    public func build() -> ColumnProfile {
        var copy = self
        copy.flush()
        if let c = copy.categorical {
            return ColumnProfile(name: name, content: .categorical(c), typeMismatches: typeMismatches)
        }
        return ColumnProfile(name: name, content: .numeric(copy.numeric), typeMismatches: typeMismatches)
    }
}
