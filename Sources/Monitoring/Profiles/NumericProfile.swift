/// The mergeable profile of one numeric feature in one window: exact moments
/// (``MomentStats``), a KLL ``QuantileSketch`` (rank error ≤ 1 % at the default k = 400), a
/// ``TDigest`` (accurate tails, for the Wasserstein distance), and exact counts of its distinct
/// values while there are at most ``smallTableLimit`` of them (used to treat low-cardinality
/// numeric columns as categorical, as Evidently does).
///
/// Memory: ≤ ≈ 18 KiB at the default k: ≈ 10.6 KiB of sketch, ≈ 7 KiB of digest while values
/// arrive (≈ 150 centroids of 32 bytes and a 2 KiB buffer; ≈ 5 KiB once merged or restored).
public struct NumericProfile: Sendable, Hashable {
    /// Distinct values tracked exactly before the table is dropped.
    public static let smallTableLimit = 5

    public private(set) var moments: MomentStats
    public private(set) var sketch: QuantileSketch
    public private(set) var digest: TDigest
    var smallValues: [Double] = []
    var smallCounts: [UInt64] = []
    var smallOverflow = false

    public init(k: Int = QuantileSketch.defaultK, seed: UInt64 = QuantileSketch.defaultSeed) {
        moments = MomentStats()
        sketch = QuantileSketch(k: k, seed: seed)
        digest = TDigest()
    }

    /// Adds one value: NaN counts as missing, ±infinity as non-finite (both kept out of the
    /// moments and the sketch).
    public mutating func add(_ x: Double) {
        moments.add(x)
        if x.isFinite {
            sketch.addFinite(x)
            digest.add(x)
            if !smallOverflow { track(x, 1) }
        }
    }

    /// Counts `n` missing values.
    public mutating func addMissing(_ n: UInt64 = 1) { moments.addMissing(n) }

    /// Adds many values; equivalent to ``add(_:)`` for each, several times faster.
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        moments.add(contentsOf: values)
        sketch.add(contentsOf: values)
        digest.add(contentsOf: values)
        if !smallOverflow {
            for x in values where x.isFinite {
                track(x, 1)
                if smallOverflow { break }
            }
        }
    }

    /// Adds many values from an array or slice.
    public mutating func add<C: Collection>(contentsOf values: C) where C.Element == Double {
        let done: Void? = values.withContiguousStorageIfAvailable { add(contentsOf: $0) }
        if done == nil { for x in values { add(x) } }
    }

    mutating func track(_ x: Double, _ n: UInt64) {
        for i in smallValues.indices where smallValues[i] == x {
            smallCounts[i] &+= n
            return
        }
        if smallValues.count < Self.smallTableLimit {
            smallValues.append(x)
            smallCounts.append(n)
        } else {
            smallOverflow = true
            smallValues = []
            smallCounts = []
        }
    }

    /// Exact counts of each distinct finite value, ascending by value, or `nil` once more than
    /// ``smallTableLimit`` distinct values have been seen.
    public var distinctValueCounts: [(value: Double, count: UInt64)]? {
        guard !smallOverflow else { return nil }
        return zip(smallValues, smallCounts).map { (value: $0, count: $1) }.sorted { $0.value < $1.value }
    }

    /// Merges another window's or shard's profile.
    public mutating func merge(_ other: NumericProfile) {
        moments.merge(other.moments)
        sketch.merge(other.sketch)
        digest.merge(other.digest)
        if other.smallOverflow {
            smallOverflow = true
            smallValues = []
            smallCounts = []
        } else if !smallOverflow {
            for (v, c) in zip(other.smallValues, other.smallCounts) {
                track(v, c)
                if smallOverflow { break }
            }
        }
    }

    /// The quantile function the Wasserstein distance uses: exact while the sketch is (up to
    /// k values), otherwise the digest's, whose error shrinks towards both tails.
    public var quantileCurve: QuantileCurve {
        sketch.retainedCount == Int(sketch.count) ? QuantileCurve(sketch.distribution) : digest.quantileCurve
    }

    /// Estimated number of finite values outside `range` (error ≤ 2ε·count from the sketch;
    /// exact when the sketch is exact or `range` covers min...max).
    public func countOutside(_ range: ClosedRange<Double>) -> Double {
        guard moments.count > 0 else { return 0 }
        if moments.min >= range.lowerBound && moments.max <= range.upperBound { return 0 }
        let d = sketch.distribution
        let n = Double(moments.count)
        // Below: weight of values < lower; above: weight of values > upper.
        let below = range.lowerBound > moments.min ? n * d.cdf(range.lowerBound.nextDown) : 0
        let above = range.upperBound < moments.max ? n * (1 - d.cdf(range.upperBound)) : 0
        return below + above
    }
}

extension NumericProfile {
    static let magic: StaticString = "IQNP"
    /// Version 1 stores plain M2; version 2 stores M2 / 4^scale (``MomentStats/scaledM2``);
    /// version 3 stores M2 as version 2 does and adds the ``TDigest``.
    static let versions: ClosedRange<UInt8> = 1...3

    /// Compact binary form (little-endian):
    ///
    /// ```
    /// "IQNP" magic, version u8 (3)
    /// moments: count u64, missing u64, nonFinite u64, min f64, max f64, mean f64, m2 f64
    /// small table: n u8 (0xFF = more than 5 distinct values), then n × (value f64, count varint)
    /// sketch: the QuantileSketch layout ("IQKS" …)
    /// digest: the TDigest layout ("IQTD" …), version 3 only
    /// ```
    /// The m2 field holds M2 / 4^s, with s the ``MomentStats/scale`` implied by min and max (plain
    /// M2 in version 1, which had no scale). Versions 1 and 2 (no digest) still read: their digest
    /// is rebuilt from the sketch's items, so it keeps the sketch's uniform rank error.
    ///
    /// About 100 bytes plus 8 bytes per retained sketch item (≤ ≈ 10.6 KiB at k = 400), plus the
    /// digest (≈ 4.5 KiB: about 26 bytes per centroid and 8 per buffered value).
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 128 + sketch.retainedCount * 8)
        encode(into: &w)
        return w.bytes
    }

    /// Writes version 3, or with `digest: false` the layout older builds read (version 1 while
    /// the moments' scale is 0, else 2).
    func encode(into w: inout ByteWriter, digest withDigest: Bool = true) {
        w.write(magic: Self.magic, version: withDigest ? 3 : (moments.scale == 0 ? 1 : 2))
        moments.encode(into: &w)
        if smallOverflow {
            w.write(UInt8(0xFF))
        } else {
            let entries = distinctValueCounts ?? []
            w.write(UInt8(entries.count))
            for e in entries {
                w.write(e.value)
                w.writeVarint(e.count)
            }
        }
        sketch.encode(into: &w)
        if withDigest { digest.encode(into: &w) }
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "NumericProfile")
        try self.init(decoding: &r)
        try r.finish()
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let version = try r.expect(magic: Self.magic, versions: Self.versions)
        let moments = try MomentStats(decoding: &r, scaledM2: version >= 2)
        let n = try r.readUInt8()
        var values: [Double] = [], counts: [UInt64] = []
        if n != 0xFF {
            guard n <= Self.smallTableLimit else { throw r.fail(.invalidValue, "small table size \(n)") }
            for _ in 0..<n {
                let v = try r.readDouble()
                let c = try r.readVarint()
                guard v.isFinite, c > 0, !values.contains(v) else { throw r.fail(.invalidValue, "small table entry") }
                values.append(v)
                counts.append(c)
            }
            guard counts.reduce(0, &+) == moments.count else { throw r.fail(.invalidValue, "small table counts") }
        }
        let sketch = try QuantileSketch(decoding: &r)
        guard sketch.count == moments.count else {
            throw r.fail(.invalidValue, "sketch count \(sketch.count) differs from moments count \(moments.count)")
        }
        let digest: TDigest
        if version >= 3 {
            digest = try TDigest(decoding: &r)
            guard digest.count == moments.count else {
                throw r.fail(.invalidValue, "digest count \(digest.count) differs from moments count \(moments.count)")
            }
        } else {
            digest = TDigest(sketch.distribution)
        }
        self.moments = moments
        self.sketch = sketch
        self.digest = digest
        smallValues = values
        smallCounts = counts
        smallOverflow = n == 0xFF
    }
}
