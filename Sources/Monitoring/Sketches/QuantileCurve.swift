/// A quantile function Q(u), u in 0...1, as a polyline through knots `(ranks[i], values[i])`
/// with both coordinates non-decreasing; two knots at the same rank make a jump. Exact samples
/// give a step function (each distinct value holds for its share of the ranks); a ``TDigest``
/// gives steps for single values and straight lines across larger centroids.
public struct QuantileCurve: Sendable, Hashable {
    /// Normalised ranks, from 0 to 1, non-decreasing.
    public let ranks: [Double]
    /// The values at those ranks, non-decreasing.
    public let values: [Double]

    public var isEmpty: Bool { ranks.isEmpty }

    init(ranks: [Double], values: [Double]) {
        self.ranks = ranks
        self.values = values
    }

    /// The step quantile function of a weighted distribution (exact for exact samples).
    public init(_ d: EmpiricalDistribution) {
        guard !d.isEmpty else {
            self.init(ranks: [], values: [])
            return
        }
        var ranks: [Double] = [], values: [Double] = []
        ranks.reserveCapacity(2 * d.values.count)
        values.reserveCapacity(2 * d.values.count)
        let total = d.totalWeight
        var previous = 0.0
        for (v, c) in zip(d.values, d.cumulative) {
            ranks.append(previous / total)
            values.append(v)
            ranks.append(c / total)
            values.append(v)
            previous = c
        }
        self.init(ranks: ranks, values: values)
    }
}
