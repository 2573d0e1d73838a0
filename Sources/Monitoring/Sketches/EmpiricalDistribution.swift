/// A weighted empirical distribution: distinct values in ascending order with the cumulative
/// weight of all items `≤` each value. It is the common currency of the numeric drift measures:
/// built exactly from raw samples, or approximately from a ``QuantileSketch`` (whose retained
/// items carry weights 2^level).
public struct EmpiricalDistribution: Sendable, Hashable {
    /// Distinct values, strictly ascending.
    public let values: [Double]
    /// `cumulative[i]` = total weight of items `≤ values[i]`; the last element is ``totalWeight``.
    public let cumulative: [Double]

    /// Total weight (the number of values represented).
    public var totalWeight: Double { cumulative.last ?? 0 }
    public var isEmpty: Bool { values.isEmpty }

    /// Exact distribution of `samples`; non-finite values are ignored.
    public init<S: Sequence>(samples: S) where S.Element == Double {
        var sorted = samples.filter { $0.isFinite }
        sorted.sort()
        self.init(sortedWeighted: sorted, weight: { _ in 1 })
    }

    /// Builds from ascending values with per-index weights, collapsing ties.
    init(sortedWeighted sorted: [Double], weight: (Int) -> Double) {
        var vals: [Double] = []
        var cum: [Double] = []
        vals.reserveCapacity(sorted.count)
        cum.reserveCapacity(sorted.count)
        var running = 0.0
        for (i, v) in sorted.enumerated() {
            running += weight(i)
            if let last = vals.last, last == v {
                cum[cum.count - 1] = running
            } else {
                vals.append(v)
                cum.append(running)
            }
        }
        values = vals
        cumulative = cum
    }

    /// Builds from ascending values and their weights, collapsing ties.
    init(sortedWeighted sorted: [Double], weights: [Double]) {
        var vals = [Double](repeating: 0, count: sorted.count)
        var cum = [Double](repeating: 0, count: sorted.count)
        var n = 0
        var running = 0.0
        sorted.withUnsafeBufferPointer { sv in
            weights.withUnsafeBufferPointer { wv in
                vals.withUnsafeMutableBufferPointer { ov in
                    cum.withUnsafeMutableBufferPointer { oc in
                        for i in 0..<sv.count {
                            running += wv[i]
                            if n > 0 && ov[n - 1] == sv[i] {
                                oc[n - 1] = running
                            } else {
                                ov[n] = sv[i]
                                oc[n] = running
                                n += 1
                            }
                        }
                    }
                }
            }
        }
        vals.removeLast(vals.count - n)
        cum.removeLast(cum.count - n)
        values = vals
        cumulative = cum
    }

    init(values: [Double], cumulative: [Double]) {
        self.values = values
        self.cumulative = cumulative
    }

    /// Fraction of weight at values `≤ x` (the right-continuous CDF), in 0...1.
    public func cdf(_ x: Double) -> Double {
        guard let total = cumulative.last, total > 0 else { return 0 }
        // Last index with values[i] <= x.
        var lo = 0, hi = values.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if values[mid] <= x { lo = mid + 1 } else { hi = mid }
        }
        return lo == 0 ? 0 : cumulative[lo - 1] / total
    }

    /// The inverted-CDF quantile: the smallest value whose CDF is `≥ q` (q clamped to 0...1).
    public func quantile(_ q: Double) -> Double {
        guard let total = cumulative.last, total > 0 else { return .nan }
        let target = Swift.min(Swift.max(q, 0), 1) * total
        var lo = 0, hi = values.count - 1
        while lo < hi {
            let mid = (lo + hi) >> 1
            if cumulative[mid] >= target { hi = mid } else { lo = mid + 1 }
        }
        return values[lo]
    }
}

extension QuantileSketch {
    /// The sketch's retained items as a weighted distribution (exact while `count <= k`).
    ///
    /// Sorts level 0 and merges the sorted levels pairwise (O(m log L) for m items in L levels).
    public var distribution: EmpiricalDistribution {
        let m = retainedCount
        guard m > 0 else { return EmpiricalDistribution(values: [], cumulative: []) }
        var va = [Double](repeating: 0, count: m), wa = [Double](repeating: 0, count: m)
        var vb = va, wb = wa
        var runs: [(Int, Int)] = []
        let base = levelStart[0]
        items.withUnsafeBufferPointer { src in
            for h in 0..<numLevels {
                let s = levelStart[h] - base, e = levelStart[h + 1] - base
                guard e > s else { continue }
                let w = Double(UInt64(1) << UInt64(h))
                for i in s..<e {
                    va[i] = src[i + base]
                    wa[i] = w
                }
                if h == 0 { va[s..<e].sort() }
                runs.append((s, e))
            }
        }
        while runs.count > 1 {
            var next: [(Int, Int)] = []
            va.withUnsafeBufferPointer { av in
                wa.withUnsafeBufferPointer { aw in
                    vb.withUnsafeMutableBufferPointer { bv in
                        wb.withUnsafeMutableBufferPointer { bw in
                            var r = 0
                            while r < runs.count {
                                let (s1, e1) = runs[r]
                                guard r + 1 < runs.count else {
                                    for i in s1..<e1 {
                                        bv[i] = av[i]
                                        bw[i] = aw[i]
                                    }
                                    next.append((s1, e1))
                                    break
                                }
                                let (s2, e2) = runs[r + 1]
                                // Runs are adjacent (s2 == e1): merge into the same span of b.
                                var i = s1, j = s2, o = s1
                                while i < e1 && j < e2 {
                                    if av[i] <= av[j] {
                                        bv[o] = av[i]
                                        bw[o] = aw[i]
                                        i += 1
                                    } else {
                                        bv[o] = av[j]
                                        bw[o] = aw[j]
                                        j += 1
                                    }
                                    o += 1
                                }
                                while i < e1 {
                                    bv[o] = av[i]
                                    bw[o] = aw[i]
                                    i += 1
                                    o += 1
                                }
                                while j < e2 {
                                    bv[o] = av[j]
                                    bw[o] = aw[j]
                                    j += 1
                                    o += 1
                                }
                                next.append((s1, e2))
                                r += 2
                            }
                        }
                    }
                }
            }
            swap(&va, &vb)
            swap(&wa, &wb)
            runs = next
        }
        return EmpiricalDistribution(sortedWeighted: va, weights: wa)
    }

    /// Estimated fraction of inserted values `≤ x`; within ε of the truth (see type docs).
    public func rank(_ x: Double) -> Double {
        if isEmpty { return 0 }
        if x < min { return 0 }
        if x >= max { return 1 }
        return distribution.cdf(x)
    }

    /// Estimated `q`-quantile (inverted CDF), whose true rank is within ε of `q`; exact for
    /// `q = 0` (min) and `q = 1` (max). NaN when empty.
    public func quantile(_ q: Double) -> Double {
        if isEmpty { return .nan }
        if q <= 0 { return min }
        if q >= 1 { return max }
        return distribution.quantile(q)
    }

    /// Several quantiles at once (one sorted view).
    public func quantiles(_ qs: [Double]) -> [Double] {
        if isEmpty { return qs.map { _ in .nan } }
        let d = distribution
        return qs.map { q in q <= 0 ? min : (q >= 1 ? max : d.quantile(q)) }
    }
}
