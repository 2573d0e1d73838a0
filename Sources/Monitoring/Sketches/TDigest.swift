/// A mergeable t-digest (Dunning & Ertl, "Computing extremely accurate quantiles using
/// t-digests", 2019; the merging variant with the K₂ scale function) over finite `Double`s.
///
/// Sorted centroids (mean, weight, smallest and largest value) summarise the data; a centroid may grow only while its share
/// of the mass stays below `q(1 − q)/η` at both of its ends, η = δ / (4 ln(n/δ) + 24), so
/// centroids are small in the tails and the extreme values stay single. Rank errors are therefore
/// relative to the distance from the nearer end, which is what the Wasserstein distance of
/// heavy-tailed data needs: there the far tail carries most of the area, and a sketch with a
/// uniform rank error (``QuantileSketch``) puts its weight in the wrong place.
///
/// **Memory.** About 150 centroids at δ = 200 (32 bytes each; tested ≤ δ up to 10⁶ values, and
/// the count grows only with log n) plus a buffer of ``bufferCapacity`` values not yet merged:
/// ≈ 7 KiB while values arrive, ≈ 5 KiB after a merge or decoding (see ``memoryFootprint``).
///
/// **Cost.** Each flush sorts the buffer with ``sortFiniteRuns(_:)`` (a merge of its ascending
/// runs, else a radix sort: a comparison sort spent most of its time on mispredicted branches)
/// and merges it into the centroids while compressing,
/// in one pass into temporary storage with no division per centroid (docs/benchmarks.md, issue 11).
///
/// **Determinism.** No random choices: replicas that apply the same updates and merges in the
/// same order (or decode the same bytes, which carry the buffer) hold identical digests.
public struct TDigest: Sendable, Hashable {
    /// Default compression δ (about 110–160 centroids in practice).
    public static let defaultCompression = 200
    /// Values buffered before they are merged into the centroids.
    public static let bufferCapacity = 256

    public let compression: Int
    /// Number of values inserted.
    public internal(set) var count: UInt64 = 0
    /// Smallest value inserted (exact); `+infinity` when empty.
    public internal(set) var min: Double = .infinity
    /// Largest value inserted (exact); `-infinity` when empty.
    public internal(set) var max: Double = -.infinity
    /// The centroids, ascending by mean (weights are whole numbers).
    var centroids: [Centroid] = []
    /// Values not yet merged, in arrival order.
    var buffer: [Double] = []

    /// Creates an empty digest.
    /// - Parameter compression: δ, 20...10000; more centroids and smaller errors as it grows.
    public init(compression: Int = TDigest.defaultCompression) {
        precondition(compression >= 20 && compression <= 10000, "TDigest compression must be in 20...10000")
        self.compression = compression
    }

    public var isEmpty: Bool { count == 0 }
    /// Number of centroids after merging the buffer.
    public var centroidCount: Int { flushed.centroids.count }
    /// Bytes used by the digest's storage (centroids, buffer and fixed fields).
    public var memoryFootprint: Int {
        centroids.capacity * MemoryLayout<Centroid>.stride + buffer.capacity * 8 + 64
    }

    /// Values summarised together: their mean and count, and the range they span.
    struct Centroid: Sendable, Hashable {
        var mean: Double
        var weight: Double
        var low: Double
        var high: Double

        init(mean: Double, weight: Double, low: Double, high: Double) {
            self.mean = mean
            self.weight = weight
            self.low = low
            self.high = high
        }

        init(_ x: Double) { self.init(mean: x, weight: 1, low: x, high: x) }
    }

    /// Adds one value; NaN and ±infinity are ignored.
    @inline(__always)
    public mutating func add(_ x: Double) {
        guard x.isFinite else { return }
        if buffer.count == buffer.capacity { growBuffer(toHold: buffer.count + 1) }
        buffer.append(x)
        if x < min { min = x }
        if x > max { max = x }
        count &+= 1
        if buffer.count >= Self.bufferCapacity { flush() }
    }

    /// Adds many values; equivalent to calling ``add(_:)`` for each.
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        var i = 0
        while i < values.count {
            // Copies the finite values that fit, then merges the full buffer.
            var lo = min, hi = max, added: UInt64 = 0
            let room = Self.bufferCapacity - buffer.count
            let end = Swift.min(values.count, i + room)
            growBuffer(toHold: buffer.count + end - i)
            while i < end {
                let x = values[i]
                i += 1
                guard x.isFinite else { continue }
                buffer.append(x)
                lo = x < lo ? x : lo
                hi = x > hi ? x : hi
                added &+= 1
            }
            min = lo
            max = hi
            count &+= added
            if buffer.count >= Self.bufferCapacity { flush() }
        }
    }

    /// Adds many values from an array or array slice.
    public mutating func add<C: Collection>(contentsOf values: C) where C.Element == Double {
        for x in values { add(x) }
    }

    /// Makes room for `n` buffered values: the buffer doubles from 16 up to ``bufferCapacity``, so
    /// a digest of a few values (a segment's window) holds a few hundred bytes, and a busy one
    /// exactly ``bufferCapacity`` doubles.
    private mutating func growBuffer(toHold n: Int) {
        guard buffer.capacity < n else { return }
        var capacity = Swift.max(16, buffer.capacity)
        while capacity < n { capacity *= 2 }
        buffer.reserveCapacity(Swift.min(capacity, Self.bufferCapacity))
    }

    /// Merges another digest into this one; the result summarises the union of both inputs.
    public mutating func merge(_ other: TDigest) {
        guard !other.isEmpty else { return }
        flush()
        let o = other.flushed
        count &+= o.count
        if o.min < min { min = o.min }
        if o.max > max { max = o.max }
        let mine = centroids
        centroids = Self.compressing(
            capacity: mine.count + o.centroids.count, total: Double(count), compression: compression
        ) { k in
            Self.mergeSorted(mine, o.centroids) { k.push($0) }
        }
    }

    /// Adds finite values given in ascending order. A run of at least half the buffer is merged
    /// into the centroids at once, without copying or sorting; a shorter one is buffered, where
    /// the flush merges the runs (``sortFiniteRuns(_:)``).
    public mutating func add(sortedFinite values: UnsafeBufferPointer<Double>) {
        assert(isAscendingFinite(values), "add(sortedFinite:) takes finite values in ascending order")
        let n = values.count
        guard n >= Self.bufferCapacity / 2 else {
            add(contentsOf: values)
            return
        }
        flush()
        if values[0] < min { min = values[0] }
        if values[n - 1] > max { max = values[n - 1] }
        count &+= UInt64(n)
        centroids = Self.merging(centroids, values, total: count, compression: compression)
    }

    /// Merges the buffered values into the centroids: one sort of the buffer, then one pass that
    /// merges it with the centroids and compresses, with no intermediate list.
    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeMutableBufferPointer { sortFiniteRuns($0) }
        centroids = buffer.withUnsafeBufferPointer {
            Self.merging(centroids, $0, total: count, compression: compression)
        }
        // Released, not kept: most digests a node holds are idle between flushes (closed-over
        // references, all-time profiles of quiet models), and a kept buffer cost 2 KiB each (a
        // third of the digest); a busy one grows it again in four doublings per flush.
        buffer = []
    }

    /// `mine` with the ascending values `b` merged in and compressed, in one pass, for a digest
    /// of `total` values in all.
    private static func merging(
        _ mine: [Centroid], _ b: UnsafeBufferPointer<Double>, total: UInt64, compression: Int
    ) -> [Centroid] {
        compressing(capacity: mine.count + b.count, total: Double(total), compression: compression) {
            k in
            var i = 0, j = 0
            while i < mine.count && j < b.count {
                // Ties: centroids first, as ``mergeSorted(_:_:)`` orders them.
                if mine[i].mean <= b[j] {
                    k.push(mine[i])
                    i += 1
                } else {
                    k.push(Centroid(b[j]))
                    j += 1
                }
            }
            while i < mine.count {
                k.push(mine[i])
                i += 1
            }
            while j < b.count {
                k.push(Centroid(b[j]))
                j += 1
            }
        }
    }

    /// A copy with the buffer merged.
    var flushed: TDigest {
        var copy = self
        copy.flush()
        return copy
    }

    /// Feeds two sorted centroid lists to `body` in one ascending sequence (ties: `a` first).
    @inline(__always)
    static func mergeSorted(_ a: [Centroid], _ b: [Centroid], _ body: (Centroid) -> Void) {
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].mean <= b[j].mean) {
                body(a[i])
                i += 1
            } else {
                body(b[j])
                j += 1
            }
        }
    }

    /// One greedy pass over sorted centroids: a centroid absorbs the next one while its share of
    /// the total stays within `q(1 − q)/η` at both its ends (K₂, η = δ / (4 ln(n/δ) + 24)).
    static func compress(_ c: [Centroid], compression: Int) -> [Centroid] {
        let total = c.reduce(0) { $0 + $1.weight }
        return compressing(capacity: c.count, total: total, compression: compression) { k in
            for x in c { k.push(x) }
        }
    }

    /// The compressed list of the centroids that `feed` pushes in ascending order (at most
    /// `capacity`, of total weight `total`), built in temporary storage so that the stored array
    /// is sized to the result.
    @inline(__always)
    static func compressing(
        capacity: Int, total: Double, compression: Int, _ feed: (inout Compressor) -> Void
    ) -> [Centroid] {
        guard capacity > 0 else { return [] }
        return withUnsafeTemporaryAllocation(of: Centroid.self, capacity: capacity) { scratch in
            var k = Compressor(total: total, compression: compression, into: scratch)
            feed(&k)
            return [Centroid](unsafeUninitializedCapacity: k.count) { buffer, initialized in
                initialized = buffer.initialize(fromContentsOf: UnsafeBufferPointer(rebasing: scratch[0..<k.count]))
            }
        }
    }

    /// The greedy K₂ pass of ``compress(_:compression:)`` over centroids pushed one at a time in
    /// ascending order, written to caller-provided storage.
    struct Compressor {
        let out: UnsafeMutableBufferPointer<Centroid>
        private(set) var count = 0
        /// 1 / n and n / η: the pass multiplies instead of dividing (it is latency-bound).
        private let inverseTotal: Double
        private let totalOverEta: Double
        /// Weight of the finished centroids (all but the last), and q(1 − q) at their end.
        private var before = 0.0
        private var lowLimit = 0.0

        init(total n: Double, compression: Int, into out: UnsafeMutableBufferPointer<Centroid>) {
            let delta = Double(compression)
            let eta = delta / (n > delta ? 4 * Math.log(n / delta) + 24 : 24)
            inverseTotal = 1 / n
            totalOverEta = n / eta
            self.out = out
        }

        @inline(__always)
        mutating func push(_ next: Centroid) {
            guard count > 0 else {
                out.initializeElement(at: 0, to: next)
                count = 1
                return
            }
            let current = out[count - 1]
            let proposed = current.weight + next.weight
            let q2 = (before + proposed) * inverseTotal
            if proposed <= Swift.min(lowLimit, q2 * (1 - q2)) * totalOverEta {
                // The weighted mean moves from the current mean towards the next one (never below
                // it: the step is not negative), kept at most the next mean; a convex combination
                // when the step overflows (means of opposite extreme signs).
                let share = next.weight / proposed
                let step = next.mean - current.mean
                let merged =
                    step.isFinite
                    ? Swift.min(current.mean + step * share, next.mean)
                    : Swift.min(Swift.max(current.mean * (1 - share) + next.mean * share, current.mean), next.mean)
                out[count - 1] = Centroid(
                    mean: merged, weight: proposed,
                    low: Swift.min(current.low, next.low), high: Swift.max(current.high, next.high))
            } else {
                before += current.weight
                let q0 = before * inverseTotal
                lowLimit = q0 * (1 - q0)
                out.initializeElement(at: count, to: next)
                count += 1
            }
        }
    }
}

extension TDigest {
    /// Builds a digest from a weighted distribution (for profiles stored before digests existed:
    /// a ``QuantileSketch``'s items, which keep that sketch's uniform rank error).
    public init(_ distribution: EmpiricalDistribution, compression: Int = TDigest.defaultCompression) {
        self.init(compression: compression)
        guard !distribution.isEmpty else { return }
        var previous = 0.0
        let items = zip(distribution.values, distribution.cumulative).map { v, c -> Centroid in
            defer { previous = c }
            return Centroid(mean: v, weight: c - previous, low: v, high: v)
        }
        count = UInt64(distribution.totalWeight)
        min = distribution.values[0]
        max = distribution.values[distribution.values.count - 1]
        centroids = Self.compress(items, compression: compression)
    }

    /// The digest's quantile function: a centroid of one repeated value (a single value included)
    /// is an exact step over its ranks; other centroids are spread linearly between the ranks
    /// of their neighbours' centres, from `min` to `max`.
    public var quantileCurve: QuantileCurve {
        let d = flushed
        guard !d.isEmpty else { return QuantileCurve(ranks: [], values: []) }
        var ranks: [Double] = [0], values: [Double] = [d.min]
        ranks.reserveCapacity(2 * d.centroids.count + 2)
        values.reserveCapacity(2 * d.centroids.count + 2)
        var before = 0.0
        for c in d.centroids {
            if c.low == c.high {
                ranks.append(before)
                values.append(c.mean)
                ranks.append(before + c.weight)
                values.append(c.mean)
            } else {
                ranks.append(before + c.weight / 2)
                values.append(c.mean)
            }
            before += c.weight
        }
        ranks.append(before)
        values.append(d.max)
        return QuantileCurve(ranks: ranks.map { $0 / before }, values: values)
    }
}
