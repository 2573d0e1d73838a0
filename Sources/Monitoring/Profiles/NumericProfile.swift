/// The mergeable profile of one numeric feature in one window: exact moments
/// (``MomentStats``), a KLL ``QuantileSketch`` (rank error ≤ 1 % at the default k = 400), a
/// ``TDigest`` (accurate tails, for the Wasserstein distance), and exact counts of its distinct
/// values while there are at most ``distinctTableLimit`` of them. The exact counts make every
/// distribution measure exact on integer-like columns (counts of rooms, items, occupants), whose
/// heavy ties the sketches blur, and let columns of at most 5 values be compared as categories,
/// as Evidently does.
///
/// Memory: ≤ ≈ 20 KiB at the default k: ≈ 10.6 KiB of sketch, ≈ 7 KiB of digest while values
/// arrive (≈ 150 centroids of 32 bytes and a 2 KiB buffer; ≈ 5 KiB once merged or restored), and
/// ≤ 2 KiB of exact counts (16 bytes per distinct value) until the table is dropped.
///
/// **Small profiles hold only the table.** While the table holds every finite value and there
/// are at most ``deferredSketchLimit`` of them, the sketches stay empty: the table is exact and
/// says everything they would (a segment's window of a few dozen rows, a small reference). Read
/// through ``sketch`` and ``digest`` they are built from the table; they are fed for real, from
/// the table first, once a value no longer fits or the count passes the limit. Whether a profile
/// is small follows from its table and count alone, so a decoded profile is in the same state as
/// the one encoded, and replicas that apply the same values hold the same sketches.
public struct NumericProfile: Sendable, Hashable {
    /// Distinct values counted exactly before the table is dropped for good. 128 covers the
    /// integer columns that matter (counts, ratings, percentages 0–100, ages in years) for at most
    /// 2 KiB per profile, less than the digest's ingest buffer; a table of 256 would cost as much
    /// as the digest itself for columns that are rarely that wide and still integer-like.
    public static let distinctTableLimit = 128
    /// The table size versions 1–3 of the serialized form allow (builds before exact ties).
    static let legacyTableLimit = 5

    /// Finite values a profile holds in its table alone, without feeding its sketches (see
    /// "Small profiles" above): up to here, building the sketches when they are read costs less
    /// than keeping them.
    public static let deferredSketchLimit: UInt64 = 512

    public private(set) var moments: MomentStats
    /// The sketches as fed: the KLL empty while ``isSmall``, the digest while ``digestDeferred``.
    private(set) var kll: QuantileSketch
    private(set) var tdigest: TDigest
    /// Exact counts while at most ``distinctTableLimit`` distinct finite values were seen; `nil`
    /// for good after that (a merge with a profile without a table drops it too).
    private(set) var table: ValueCountTable? = ValueCountTable()

    public init(k: Int = QuantileSketch.defaultK, seed: UInt64 = QuantileSketch.defaultSeed) {
        moments = MomentStats()
        kll = QuantileSketch(k: k, seed: seed)
        tdigest = TDigest()
    }

    /// The most values a small profile holds: never more than k, so a KLL built from the table
    /// never compacts (and never draws from its generator), and building it on read or feeding it
    /// later gives the same sketch.
    private var smallLimit: UInt64 { Swift.min(Self.deferredSketchLimit, UInt64(kll.k)) }

    /// Whether the table alone holds the profile's values (both sketches are empty).
    var isSmall: Bool { table != nil && moments.count <= smallLimit }

    /// Whether the digest is empty: while there are at most k values and the KLL has one level,
    /// the table or the KLL holds every value exactly, and the digest, which only the Wasserstein
    /// distance of an inexact KLL reads, would be 32 bytes per value of nothing new. (Adds never
    /// compact a KLL below k values; a merge with a sketch of another k can, which ends this.)
    var digestDeferred: Bool { moments.count <= UInt64(kll.k) && kll.numLevels == 1 }

    /// The KLL sketch of the finite values (built from the table while the profile is small).
    public var sketch: QuantileSketch {
        guard isSmall else { return kll }
        var built = kll
        table!.withExpanded { built.add(sortedFinite: $0) }
        return built
    }

    /// The t-digest of the finite values (built from the exact values while it is deferred).
    public var digest: TDigest {
        guard digestDeferred else { return tdigest }
        var built = tdigest
        feedExactValues(to: &built, small: isSmall)
        return built
    }

    /// Feeds `digest` every value held so far, which the table (while the profile is `small`) or
    /// the uncompacted KLL holds exactly.
    private func feedExactValues(to digest: inout TDigest, small: Bool) {
        if small {
            table!.withExpanded { digest.add(sortedFinite: $0) }
        } else {
            kll.withSortedItemsOfOneLevel { digest.add(sortedFinite: $0) }
        }
    }

    /// Adds one value: NaN counts as missing, ±infinity as non-finite (both kept out of the
    /// moments and the sketch).
    public mutating func add(_ x: Double) {
        let before = (small: isSmall, digestDeferred: digestDeferred)
        moments.add(x)
        guard x.isFinite else { return }
        withUnsafePointer(to: x) { absorb(UnsafeBufferPointer(start: $0, count: 1), before: before) }
    }

    /// Adds finite values, ascending, that ``moments`` already counts, to the table and the
    /// sketches. `before` is the state before they were counted. Each value reaches each sketch
    /// exactly once: a sketch that was deferred is first fed what was held exactly (the table, or
    /// the KLL's items for the digest), then the values that are not in that.
    private mutating func absorb(_ run: UnsafeBufferPointer<Double>, before: (small: Bool, digestDeferred: Bool)) {
        var rest = run  // what the sketches fed from the table do not hold yet
        var dropsTable = false
        if table != nil {
            let taken = table!.countingPrefix(of: run, limit: Self.distinctTableLimit)
            dropsTable = taken < run.count
            if before.small { rest = UnsafeBufferPointer(rebasing: run[taken...]) }
        }
        if before.small && !dropsTable && moments.count <= smallLimit { return }
        // The digest first: it may need the KLL's items from before this run.
        if !before.digestDeferred {
            tdigest.add(sortedFinite: run)
        } else if !digestDeferred {
            feedExactValues(to: &tdigest, small: before.small)
            tdigest.add(sortedFinite: before.small ? rest : run)
        }
        if before.small { table!.withExpanded { kll.add(sortedFinite: $0) } }
        kll.add(sortedFinite: rest)
        if dropsTable { table = nil }
    }

    /// Counts `n` missing values.
    public mutating func addMissing(_ n: UInt64 = 1) { moments.addMissing(n) }

    /// Adds many values, several times faster than ``add(_:)`` for each: the finite values are
    /// sorted once and both sketches take them as ascending runs (which they merge instead of
    /// sorting again). The moments, the counts, the exact table, min and max are the same as
    /// value by value; the sketches summarise the same values within their error bounds but keep
    /// other items (their buffers fill in another order).
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        // Sorted in slices that stay in cache: one sort of millions of values costs more than
        // the sketches gain from longer runs.
        let slice = 8_192
        withUnsafeTemporaryAllocation(of: Double.self, capacity: Swift.min(values.count, slice)) { scratch in
            var start = 0
            while start < values.count {
                let part = UnsafeBufferPointer(rebasing: values[start..<Swift.min(start + slice, values.count)])
                var n = 0
                for x in part where x.isFinite {
                    scratch[n] = x
                    n += 1
                }
                let sorted = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
                sortFiniteRuns(sorted)
                add(contentsOf: part, sortedFinite: UnsafeBufferPointer(sorted))
                start += slice
            }
        }
    }

    /// Adds `values` whose finite ones, ascending, are `sortedFinite` (the caller sorted them,
    /// once for several profiles): the same as ``add(contentsOf:)``.
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>, sortedFinite: UnsafeBufferPointer<Double>)
    {
        let before = (small: isSmall, digestDeferred: digestDeferred)
        moments.add(contentsOf: values)
        absorb(sortedFinite, before: before)
    }

    /// Adds many values from an array or slice.
    public mutating func add<C: Collection>(contentsOf values: C) where C.Element == Double {
        let done: Void? = values.withContiguousStorageIfAvailable { add(contentsOf: $0) }
        if done == nil { for x in values { add(x) } }
    }

    /// Exact counts of each distinct finite value, ascending by value, or `nil` once more than
    /// ``distinctTableLimit`` distinct values have been seen.
    public var distinctValueCounts: [(value: Double, count: UInt64)]? {
        table.map { t in zip(t.values, t.counts).map { (value: $0, count: $1) } }
    }

    /// Number of distinct finite values, or `nil` once more than ``distinctTableLimit`` were seen.
    public var distinctCount: Int? { table?.count }

    /// The distribution the drift measures use: exact from the table while there is one, else the
    /// sketch's (exact up to k values, then within its rank error).
    public var distribution: EmpiricalDistribution { table?.distribution ?? sketch.distribution }

    /// Merges another window's or shard's profile.
    public mutating func merge(_ other: NumericProfile) {
        var union: ValueCountTable?
        if let mine = table, let theirs = other.table {
            union = ValueCountTable.union(mine, theirs, limit: Self.distinctTableLimit)
        }
        let total = moments.count &+ other.moments.count
        if isSmall && union != nil && total <= smallLimit {
            moments.merge(other.moments)
            table = union
            return
        }
        // Each deferred sketch first takes this profile's own values (held exactly), then the other's.
        let theirs = other.sketch
        if !digestDeferred {
            tdigest.merge(other.digest)
        } else if total > UInt64(kll.k) || theirs.numLevels > 1 {
            // The merged KLL may compact: the digest stops being deferred here.
            feedExactValues(to: &tdigest, small: isSmall)
            tdigest.merge(other.digest)
        }
        if isSmall { table!.withExpanded { kll.add(sortedFinite: $0) } }
        kll.merge(theirs)
        moments.merge(other.moments)
        table = union
    }

    /// The quantile function the Wasserstein distance uses: exact while the table or the sketch
    /// is (up to ``distinctTableLimit`` distinct values, or k values), otherwise the digest's,
    /// whose error shrinks towards both tails but which blurs heavy ties.
    public var quantileCurve: QuantileCurve {
        if let table { return QuantileCurve(table.distribution) }
        return kll.retainedCount == Int(kll.count) ? QuantileCurve(kll.distribution) : tdigest.quantileCurve
    }

    /// Estimated number of finite values outside `range` (error ≤ 2ε·count from the sketch;
    /// exact when the sketch is exact or `range` covers min...max).
    public func countOutside(_ range: ClosedRange<Double>) -> Double {
        guard moments.count > 0 else { return 0 }
        if moments.min >= range.lowerBound && moments.max <= range.upperBound { return 0 }
        let d = isSmall ? table!.distribution : kll.distribution
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
    /// version 3 stores M2 as version 2 does and adds the ``TDigest``; version 4 is version 3 with
    /// a table of up to ``distinctTableLimit`` (not 5) values, written ascending.
    static let versions: ClosedRange<UInt8> = 1...4

    /// Compact binary form (little-endian):
    ///
    /// ```
    /// "IQNP" magic, version u8 (3 or 4)
    /// moments: count u64, missing u64, nonFinite u64, min f64, max f64, mean f64, m2 f64
    /// table: n u8 (0xFF = dropped), then n × (value f64, count varint), values ascending
    /// sketch: the QuantileSketch layout ("IQKS" …)
    /// digest: the TDigest layout ("IQTD" …), versions 3 and 4
    /// ```
    /// Version 4 is written only when the table holds 6...128 values; otherwise the bytes are
    /// version 3's (n ≤ 5 or 0xFF), which builds before version 4 read. Versions 1–3 allow n ≤ 5,
    /// and their 0xFF (more than 5 values) reads as a dropped table.
    /// The m2 field holds M2 / 4^s, with s the ``MomentStats/scale`` implied by min and max (plain
    /// M2 in version 1, which had no scale). Versions 1 and 2 (no digest) still read: their digest
    /// is rebuilt from the sketch's items, so it keeps the sketch's uniform rank error.
    ///
    /// About 100 bytes plus 8 bytes per retained sketch item (≤ ≈ 10.6 KiB at k = 400), plus the
    /// digest (≈ 4.5 KiB: about 26 bytes per centroid and 8 per buffered value), plus 9–18 bytes
    /// per table entry (≤ ≈ 1.4 KiB for 128 values with counts below 2^28).
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 128 + (isSmall ? Int(moments.count) : kll.retainedCount) * 8)
        encode(into: &w)
        return w.bytes
    }

    /// Writes version 3 or 4 (see ``serialized()``), or with `digest: false` the layout builds
    /// before the digest read (version 1 while the moments' scale is 0, else 2; a table of more
    /// than 5 values is written as dropped).
    func encode(into w: inout ByteWriter, digest withDigest: Bool = true) {
        let wide = (table?.count ?? 0) > Self.legacyTableLimit
        let version: UInt8 = withDigest ? (wide ? 4 : 3) : (moments.scale == 0 ? 1 : 2)
        w.write(magic: Self.magic, version: version)
        moments.encode(into: &w)
        if let table, version == 4 || !wide {
            w.write(UInt8(table.count))
            for (v, c) in zip(table.values, table.counts) {
                w.write(v)
                w.writeVarint(c)
            }
        } else {
            w.write(UInt8(0xFF))
        }
        // A small profile writes the sketches built from its table: the layout stays the one
        // every build reads, and the decoder (which sees the same table and count) drops them.
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
        var table: ValueCountTable?
        if n != 0xFF {
            let limit = version >= 4 ? Self.distinctTableLimit : Self.legacyTableLimit
            guard n <= limit else { throw r.fail(.invalidValue, "table size \(n)") }
            var entries: [(value: Double, count: UInt64)] = []
            for _ in 0..<n {
                let v = try r.readDouble()
                let c = try r.readVarint()
                guard v.isFinite, c > 0 else { throw r.fail(.invalidValue, "table entry") }
                if version >= 4, let last = entries.last, !(last.value < v) {
                    throw r.fail(.invalidValue, "table values not ascending")
                }
                entries.append((v, c))
            }
            // Versions before 4 did not promise an order.
            entries.sort { $0.value < $1.value }
            guard zip(entries, entries.dropFirst()).allSatisfy({ $0.value < $1.value }) else {
                throw r.fail(.invalidValue, "table values repeated")
            }
            let (total, overflow) = entries.reduce((UInt64(0), false)) { acc, e in
                let (s, o) = acc.0.addingReportingOverflow(e.count)
                return (s, acc.1 || o)
            }
            guard !overflow, total == moments.count else { throw r.fail(.invalidValue, "table counts") }
            table = ValueCountTable(sortedValues: entries.map(\.value), counts: entries.map(\.count))
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
        self.kll = sketch
        self.tdigest = digest
        self.table = table
        // What ``sketch`` and ``digest`` build from the exact values; the stored ones (built the
        // same way, or fed value by value by builds before deferred sketches) are not kept.
        if isSmall { kll = sketch.emptied() }
        if digestDeferred { tdigest = TDigest(compression: digest.compression) }
    }
}
