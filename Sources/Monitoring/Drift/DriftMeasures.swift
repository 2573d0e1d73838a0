/// The drift measures as pure functions over distributions and histograms. Formulas are in
/// docs/drift.md; each function states its own.
public enum DriftMeasures {
    /// Kolmogorov–Smirnov statistic sup_x |F_a(x) − F_b(x)| between right-continuous CDFs,
    /// evaluated at every distinct value of either input (equals SciPy's `ks_2samp` statistic
    /// for exact inputs).
    public static func kolmogorovSmirnov(_ a: EmpiricalDistribution, _ b: EmpiricalDistribution) -> Double {
        cdfDistances(a, b).ks
    }

    /// Wasserstein-1 distance ∫|F_a − F_b| dx (equals SciPy's `wasserstein_distance` for exact
    /// inputs).
    public static func wasserstein(_ a: EmpiricalDistribution, _ b: EmpiricalDistribution) -> Double {
        cdfDistances(a, b).wasserstein
    }

    /// Wasserstein-1 distance ∫₀¹ |Q_a(u) − Q_b(u)| du between quantile curves (equal to
    /// ∫|F_a − F_b| dx, and to SciPy's `wasserstein_distance` for curves of exact samples). Both
    /// curves are linear between consecutive knots, so each piece is integrated exactly.
    public static func wasserstein(_ a: QuantileCurve, _ b: QuantileCurve) -> Double {
        guard a.ranks.count > 1, b.ranks.count > 1 else { return 0 }
        let ua = a.ranks, va = a.values, ub = b.ranks, vb = b.values
        // Value of the piece starting at knot i at rank u (the piece has positive length).
        func at(_ r: [Double], _ v: [Double], _ i: Int, _ u: Double) -> Double {
            v[i] + (v[i + 1] - v[i]) * ((u - r[i]) / (r[i + 1] - r[i]))
        }
        var i = 0, j = 0, u = 0.0, area = 0.0
        while true {
            // Pieces covering (u, next): skips the jumps (pieces of zero length) and finished pieces.
            while i + 2 < ua.count && ua[i + 1] <= u { i += 1 }
            while j + 2 < ub.count && ub[j + 1] <= u { j += 1 }
            let end = Swift.min(ua[i + 1], ub[j + 1])
            guard end > u else { break }
            let d0 = at(ua, va, i, u) - at(ub, vb, j, u), d1 = at(ua, va, i, end) - at(ub, vb, j, end)
            let length = end - u
            if d0 * d1 >= 0 {
                area += length * (Swift.abs(d0) + Swift.abs(d1)) / 2
            } else {
                // The difference crosses zero inside the piece: two triangles.
                area += length * (d0 * d0 + d1 * d1) / (2 * (Swift.abs(d0) + Swift.abs(d1)))
            }
            u = end
        }
        return area
    }

    /// Both CDF distances in one pass over the union of distinct values.
    public static func cdfDistances(
        _ a: EmpiricalDistribution, _ b: EmpiricalDistribution
    ) -> (ks: Double, wasserstein: Double) {
        guard !a.isEmpty, !b.isEmpty else { return (0, 0) }
        let ta = a.totalWeight, tb = b.totalWeight
        return a.values.withUnsafeBufferPointer { av in
            b.values.withUnsafeBufferPointer { bv in
                a.cumulative.withUnsafeBufferPointer { ac in
                    b.cumulative.withUnsafeBufferPointer { bc in
                        var i = 0, j = 0
                        var fa = 0.0, fb = 0.0
                        var ks = 0.0, area = 0.0
                        var x = Swift.min(av[0], bv[0])
                        while true {
                            if i < av.count && av[i] == x {
                                fa = ac[i] / ta
                                i += 1
                            }
                            if j < bv.count && bv[j] == x {
                                fb = bc[j] / tb
                                j += 1
                            }
                            let gap = Swift.abs(fa - fb)
                            ks = Swift.max(ks, gap)
                            let next: Double
                            if i < av.count {
                                next = j < bv.count ? Swift.min(av[i], bv[j]) : av[i]
                            } else if j < bv.count {
                                next = bv[j]
                            } else {
                                break
                            }
                            area += gap * (next - x)
                            x = next
                        }
                        return (ks, area)
                    }
                }
            }
        }
    }

    /// Bin edges at the reference quantiles i/bins (inverted CDF), i = 1…bins−1, duplicates
    /// removed. Bins are (−∞, e₁], (e₁, e₂], …, (e_last, +∞).
    public static func quantileEdges(_ reference: EmpiricalDistribution, bins: Int) -> [Double] {
        guard !reference.isEmpty, bins > 1 else { return [] }
        var edges: [Double] = []
        for i in 1..<bins {
            let e = reference.quantile(Double(i) / Double(bins))
            if edges.last != e { edges.append(e) }
        }
        return edges
    }

    /// Share of `d`'s weight in each bin defined by `edges` (sums to 1).
    public static func binShares(_ d: EmpiricalDistribution, edges: [Double]) -> [Double] {
        var shares: [Double] = []
        shares.reserveCapacity(edges.count + 1)
        var previous = 0.0
        for e in edges {
            let f = d.cdf(e)
            shares.append(f - previous)
            previous = f
        }
        shares.append(1 - previous)
        return shares
    }

    /// Population Stability Index Σ (c_i − r_i)·ln(c_i / r_i), natural log, after replacing empty
    /// shares with `smoothing` (default 1e-4, as Evidently does).
    public static func psi(reference r: [Double], current c: [Double], smoothing: Double = 1e-4) -> Double {
        var total = 0.0
        for (ri, ci) in zip(r, c) {
            let rs = ri > 0 ? ri : smoothing, cs = ci > 0 ? ci : smoothing
            total += (cs - rs) * Math.log(cs / rs)
        }
        return total
    }

    /// Jensen–Shannon distance √(½ KL(p‖m) + ½ KL(q‖m)), m = (p+q)/2, with 0·log 0 = 0 and both
    /// inputs normalized to sum 1: natural log (0…√ln 2) by default, equal to SciPy's
    /// `jensenshannon(p, q)`; base 2 (0…1) equals `jensenshannon(p, q, base=2)`. No smoothing
    /// is needed.
    public static func jensenShannon(_ p: [Double], _ q: [Double], base: JensenShannonBase = .e) -> Double {
        let sp = p.reduce(0, +), sq = q.reduce(0, +)
        guard sp > 0, sq > 0 else { return 0 }
        var js = 0.0
        for (pi0, qi0) in zip(p, q) {
            let pi = pi0 / sp, qi = qi0 / sq
            let m = (pi + qi) / 2
            if pi > 0 { js += pi * Math.log(pi / m) }
            if qi > 0 { js += qi * Math.log(qi / m) }
        }
        let divergence = base == .two ? js / (2 * Math.log(2)) : js / 2
        return Swift.max(0, divergence).squareRoot()
    }

    /// Hellinger distance (0…1): √(1 − Σ √(p_i q_i)) for normalized p and q.
    public static func hellinger(_ p: [Double], _ q: [Double]) -> Double {
        let sp = p.reduce(0, +), sq = q.reduce(0, +)
        guard sp > 0, sq > 0 else { return 0 }
        var bc = 0.0
        for (pi, qi) in zip(p, q) { bc += (pi / sp * qi / sq).squareRoot() }
        return Swift.max(0, 1 - bc).squareRoot()
    }

    /// Pearson chi-square test of homogeneity on the 2×K table of counts (no continuity
    /// correction; categories empty in both rows are dropped): statistic Σ (O − E)²/E with
    /// E = row total · column total / N, K−1 degrees of freedom (equals SciPy's
    /// `chi2_contingency(table, correction=False)`). For two categories it equals the
    /// two-proportion z-test (χ² = z²).
    public static func chiSquare(reference: [Double], current: [Double]) -> (
        statistic: Double, degreesOfFreedom: Int, pValue: Double
    ) {
        var r: [Double] = [], c: [Double] = []
        for (ri, ci) in zip(reference, current) where ri + ci > 0 {
            r.append(ri)
            c.append(ci)
        }
        let nr = r.reduce(0, +), nc = c.reduce(0, +)
        guard r.count > 1, nr > 0, nc > 0 else { return (0, Swift.max(r.count - 1, 0), 1) }
        let n = nr + nc
        var stat = 0.0
        for (ri, ci) in zip(r, c) {
            let col = ri + ci
            let er = nr * col / n, ec = nc * col / n
            stat += (ri - er) * (ri - er) / er + (ci - ec) * (ci - ec) / ec
        }
        let df = r.count - 1
        return (stat, df, PValues.chiSquareSurvival(stat, degreesOfFreedom: Double(df)))
    }
}
