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
        if buffer.isEmpty { buffer.reserveCapacity(Self.bufferCapacity) }
        buffer.append(x)
        if x < min { min = x }
        if x > max { max = x }
        count &+= 1
        if buffer.count >= Self.bufferCapacity { flush() }
    }

    /// Adds many values; equivalent to calling ``add(_:)`` for each.
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        for x in values { add(x) }
    }

    /// Adds many values from an array or array slice.
    public mutating func add<C: Collection>(contentsOf values: C) where C.Element == Double {
        for x in values { add(x) }
    }

    /// Merges another digest into this one; the result summarises the union of both inputs.
    public mutating func merge(_ other: TDigest) {
        guard !other.isEmpty else { return }
        flush()
        let o = other.flushed
        count &+= o.count
        if o.min < min { min = o.min }
        if o.max > max { max = o.max }
        centroids = Self.compress(Self.mergeSorted(centroids, o.centroids), compression: compression)
    }

    /// Merges the buffered values into the centroids.
    mutating func flush() {
        guard !buffer.isEmpty else { return }
        buffer.withUnsafeMutableBufferPointer { sortDoubles($0) }
        let merged = Self.mergeSorted(centroids, buffer.map(Centroid.init))
        buffer.removeAll(keepingCapacity: true)
        centroids = Self.compress(merged, compression: compression)
    }

    /// A copy with the buffer merged.
    var flushed: TDigest {
        var copy = self
        copy.flush()
        return copy
    }

    /// Merges two sorted centroid lists (ties: `a` first).
    static func mergeSorted(_ a: [Centroid], _ b: [Centroid]) -> [Centroid] {
        var out: [Centroid] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i].mean <= b[j].mean) {
                out.append(a[i])
                i += 1
            } else {
                out.append(b[j])
                j += 1
            }
        }
        return out
    }

    /// One greedy pass over sorted centroids: a centroid absorbs the next one while its share of
    /// the total stays within `q(1 − q)/η` at both its ends (K₂, η = δ / (4 ln(n/δ) + 24)).
    static func compress(_ c: [Centroid], compression: Int) -> [Centroid] {
        guard c.count > 1 else { return c }
        let n = c.reduce(0) { $0 + $1.weight }, delta = Double(compression)
        let eta = delta / (n > delta ? 4 * Math.log(n / delta) + 24 : 24)
        var out: [Centroid] = [c[0]]
        var before = 0.0
        for next in c.dropFirst() {
            let last = out.count - 1
            let current = out[last]
            let proposed = current.weight + next.weight
            let q0 = before / n, q2 = (before + proposed) / n
            if proposed <= n * Swift.min(q0 * (1 - q0), q2 * (1 - q2)) / eta {
                // A convex combination (no overflow for extreme values), kept between the two means.
                let merged = current.mean * (current.weight / proposed) + next.mean * (next.weight / proposed)
                out[last] = Centroid(
                    mean: Swift.min(Swift.max(merged, current.mean), next.mean), weight: proposed,
                    low: Swift.min(current.low, next.low), high: Swift.max(current.high, next.high))
            } else {
                before += current.weight
                out.append(next)
            }
        }
        // A copy sized to the result: the stored array holds no spare capacity.
        return [Centroid](unsafeUninitializedCapacity: out.count) { buffer, initialized in
            initialized = buffer.initialize(fromContentsOf: out)
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
