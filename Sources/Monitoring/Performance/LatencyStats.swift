/// Mergeable latency summary: exact count, mean, min and max, and p50/p90/p99 from a KLL
/// sketch (each quantile's rank within 1 % of the requested one).
public struct LatencyStats: Sendable, Hashable {
    public private(set) var moments = MomentStats()
    public private(set) var sketch = QuantileSketch()

    public init() {}

    /// Adds one latency (any unit, used consistently; seconds recommended).
    public mutating func add(_ latency: Double) {
        moments.add(latency)
        sketch.add(latency)
    }

    public mutating func merge(_ other: LatencyStats) {
        moments.merge(other.moments)
        sketch.merge(other.sketch)
    }

    public var count: UInt64 { moments.count }
    public var mean: Double { moments.mean }
    /// NaN when empty.
    public var p50: Double { sketch.quantile(0.5) }
    public var p90: Double { sketch.quantile(0.9) }
    public var p99: Double { sketch.quantile(0.99) }
    public func quantile(_ q: Double) -> Double { sketch.quantile(q) }
}
