/// Counts of the most frequent strings in a stream, with a guaranteed error bound
/// (Misra–Gries with DataSketches-style median purges; mergeable as in Agarwal et al. 2012).
///
/// **Error bound.** For every item, `count(item) ≤ true count ≤ count(item) + maximumError`,
/// and items not retained have a true count `≤ maximumError`. `maximumError` is reported exactly
/// and is at most `2 · total / (capacity + 1)`; it is **0 (all counts exact) while the stream
/// holds at most `capacity` distinct items**, which covers most categorical features.
///
/// Memory: at most `capacity` entries (default 1,024).
public struct FrequentItems: Sendable, Hashable {
    /// Default number of counters.
    public static let defaultCapacity = 1024

    /// Maximum number of counters kept.
    public let capacity: Int
    /// Current counters (lower bounds of the true counts).
    var counts: [String: UInt64] = [:]
    /// Total weight added.
    public private(set) var total: UInt64 = 0
    /// Upper bound on how much any count may be underestimated.
    public private(set) var maximumError: UInt64 = 0

    public init(capacity: Int = FrequentItems.defaultCapacity) {
        precondition(capacity >= 2, "FrequentItems capacity must be at least 2")
        self.capacity = capacity
    }

    /// Number of items currently counted.
    public var retainedCount: Int { counts.count }

    /// Adds `weight` occurrences of `item`.
    public mutating func add(_ item: String, weight: UInt64 = 1) {
        _ = insert(item, weight: weight)
    }

    /// Adds `weight` occurrences of `item`; returns `true` when `item` was not being counted.
    mutating func insert(_ item: String, weight: UInt64) -> Bool {
        guard weight > 0 else { return false }
        total &+= weight
        if let i = counts.index(forKey: item) {
            counts.values[i] &+= weight
            return false
        }
        counts[item] = weight
        if counts.count > capacity { purge(keepingAtMost: capacity / 2) }
        return true
    }

    /// Lower bound of `item`'s count (0 if not retained).
    public func count(of item: String) -> UInt64 { counts[item] ?? 0 }

    /// Bounds on `item`'s true count.
    public func bounds(of item: String) -> ClosedRange<UInt64> {
        let c = counts[item] ?? 0
        return c...(c &+ maximumError)
    }

    /// Retained items, most frequent first (ties by item, ascending): deterministic order.
    public var items: [(item: String, count: UInt64)] {
        counts.map { (item: $0.key, count: $0.value) }.sorted {
            $0.count != $1.count ? $0.count > $1.count : $0.item < $1.item
        }
    }

    /// Subtracts the count of the `(keep + 1)`-th largest counter from every counter and drops
    /// those that reach zero, adding the subtracted amount to ``maximumError``.
    mutating func purge(keepingAtMost keep: Int) {
        var values = Array(counts.values)
        values.sort(by: >)
        let threshold = values[Swift.min(keep, values.count - 1)]
        var next: [String: UInt64] = [:]
        next.reserveCapacity(capacity + 1)
        for (item, c) in counts where c > threshold { next[item] = c - threshold }
        counts = next
        maximumError &+= threshold
    }

    /// Merges another summary; the error bound holds for the union of both streams.
    public mutating func merge(_ other: FrequentItems) {
        total &+= other.total
        maximumError &+= other.maximumError
        for (item, c) in other.counts { counts[item, default: 0] &+= c }
        if counts.count > capacity { purge(keepingAtMost: capacity) }
    }
}

extension FrequentItems {
    func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(capacity))
        w.writeVarint(total)
        w.writeVarint(maximumError)
        let sorted = items
        w.writeVarint(UInt64(sorted.count))
        for (item, c) in sorted {
            w.write(string: item)
            w.writeVarint(c)
        }
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let capacity = try r.readCount(limit: 1 << 24, "capacity")
        guard capacity >= 2 else { throw r.fail(.invalidValue, "capacity \(capacity) below 2") }
        self.init(capacity: capacity)
        total = try r.readVarint()
        maximumError = try r.readVarint()
        let n = try r.readCount(limit: capacity, "entry count")
        var sum: UInt64 = 0
        counts.reserveCapacity(n)
        for _ in 0..<n {
            let item = try r.readString()
            let c = try r.readVarint()
            guard c > 0 else { throw r.fail(.invalidValue, "zero count") }
            guard counts.updateValue(c, forKey: item) == nil else { throw r.fail(.invalidValue, "duplicate item") }
            let (s, o) = sum.addingReportingOverflow(c)
            guard !o, s <= total else { throw r.fail(.invalidValue, "counts exceed total") }
            sum = s
        }
    }
}
