/// Exact counts of distinct finite values, ascending by value, up to a fixed number of values.
///
/// ``NumericProfile`` keeps one while its column has at most ``NumericProfile/distinctTableLimit``
/// distinct values and drops it for good once a value more arrives. Values live sorted in two
/// parallel arrays: a lookup is a binary search (≤ 8 probes at 128 values), a new value is an
/// insertion (at most `limit` of them in a table's life), and the table is already in the order
/// every consumer reads it. Memory: 16 bytes per value.
struct ValueCountTable: Sendable, Hashable {
    /// Distinct values, strictly ascending (`-0.0` and `0.0` are one value).
    private(set) var values: [Double] = []
    /// `counts[i]` occurrences of `values[i]`, each > 0.
    private(set) var counts: [UInt64] = []

    init() {}

    /// A table from strictly ascending values and positive counts (checked by the caller).
    init(sortedValues: [Double], counts: [UInt64]) {
        values = sortedValues
        self.counts = counts
    }

    var count: Int { values.count }
    /// Sum of the counts.
    var total: UInt64 { counts.reduce(0, &+) }

    /// Index of the first value `>= x`.
    @inline(__always)
    func lowerBound(_ x: Double) -> Int {
        values.withUnsafeBufferPointer { Self.lowerBound($0, x) }
    }

    /// Index of the first element of ascending `v` that is `>= x`. Branch-free: the loop runs
    /// ⌈log₂ n⌉ times whatever the data and the comparison becomes a conditional move, so a column
    /// of random integers costs no mispredicted branch per value.
    @inline(__always)
    static func lowerBound(_ v: UnsafeBufferPointer<Double>, _ x: Double) -> Int {
        var n = v.count
        guard n > 0 else { return 0 }
        var base = 0
        while n > 1 {
            let half = n &>> 1
            base = v[base &+ half] < x ? base &+ half : base
            n &-= half
        }
        return v[base] < x ? base &+ 1 : base
    }

    /// Adds `n` occurrences of the finite value `x`; returns `false`, leaving the table as it was,
    /// when `x` is new and the table already holds `limit` values.
    @inline(__always)
    mutating func add(_ x: Double, count n: UInt64 = 1, limit: Int) -> Bool {
        let i = lowerBound(x)
        if i < values.count && values[i] == x {
            counts[i] &+= n
            return true
        }
        guard values.count < limit else { return false }
        values.insert(x, at: i)
        counts.insert(n, at: i)
        return true
    }

    /// Adds the values of `xs` in order until one does not fit; returns how many were taken (all
    /// of `xs` when everything fit). Non-finite values are skipped but count as taken.
    mutating func countingPrefix(of xs: UnsafeBufferPointer<Double>, limit: Int) -> Int {
        var i = 0
        while i < xs.count {
            // Runs of values already in the table update the counts in place, without insertion.
            let missing: Double? = counts.withUnsafeMutableBufferPointer { c in
                values.withUnsafeBufferPointer { v in
                    while i < xs.count {
                        let x = xs[i]
                        if x.isFinite {
                            let lo = Self.lowerBound(v, x)
                            guard lo < v.count && v[lo] == x else { return x }
                            c[lo] &+= 1
                        }
                        i &+= 1
                    }
                    return nil
                }
            }
            guard let x = missing else { return xs.count }
            guard add(x, limit: limit) else { return i }
            i &+= 1
        }
        return xs.count
    }

    /// The union of two tables (counts added), or `nil` when it has more than `limit` values.
    static func union(_ a: ValueCountTable, _ b: ValueCountTable, limit: Int) -> ValueCountTable? {
        var values: [Double] = [], counts: [UInt64] = []
        values.reserveCapacity(Swift.min(a.count + b.count, limit))
        counts.reserveCapacity(Swift.min(a.count + b.count, limit))
        var i = 0, j = 0
        while i < a.count || j < b.count {
            guard values.count < limit else { return nil }
            if j == b.count || (i < a.count && a.values[i] < b.values[j]) {
                values.append(a.values[i])
                counts.append(a.counts[i])
                i += 1
            } else if i == a.count || b.values[j] < a.values[i] {
                values.append(b.values[j])
                counts.append(b.counts[j])
                j += 1
            } else {
                values.append(a.values[i])
                counts.append(a.counts[i] &+ b.counts[j])
                i += 1
                j += 1
            }
        }
        return ValueCountTable(sortedValues: values, counts: counts)
    }

    /// Calls `body` with every counted value, ascending, each repeated by its count (for tables of
    /// small totals: the caller bounds the total).
    func withExpanded(_ body: (UnsafeBufferPointer<Double>) -> Void) {
        let total = Int(self.total)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: total) { all in
            var n = 0
            for (v, c) in zip(values, counts) {
                for _ in 0..<Int(c) {
                    all[n] = v
                    n += 1
                }
            }
            body(UnsafeBufferPointer(rebasing: all[0..<n]))
        }
    }

    /// The exact distribution of the counted values.
    var distribution: EmpiricalDistribution {
        // `counts.map(Double.init)` would pick `Double(bitPattern:)`: denormal weights, right in
        // ratio but slow to add.
        EmpiricalDistribution(sortedWeighted: values, weights: counts.map { Double($0) })
    }
}
