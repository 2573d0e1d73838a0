/// ADWIN (ADaptive WINdowing, Bifet & Gavaldà 2007), a streaming change detector for the mean of
/// a metric series, with exponential-histogram buckets (ADWIN2): O(M·log W) memory and time.
///
/// **Guarantee** (for values in [0, 1]; scale other metrics first): with confidence δ,
/// 1. *False positives*: if the mean stays constant, the probability that ADWIN shrinks its
///    window (reports a change) at a given step is at most δ.
/// 2. *False negatives*: if the window can be split into an older part W₀ and a newer part W₁
///    whose means differ by more than 2·ε_cut, the window is shrunk (a change is reported) with
///    probability ≥ 1 − δ, where
///    ε_cut = √(2/m · σ²_W · ln(2/δ′)) + 2/(3m) · ln(2/δ′), 1/m = 1/|W₀| + 1/|W₁|,
///    δ′ = δ / ln |W|.
/// Cuts are tested at bucket boundaries every `clock` values (as in MOA and river).
public struct ADWIN: Sendable, Hashable {
    struct Bucket: Sendable, Hashable {
        var total: Double
        var variance: Double  // sum of squared deviations from the bucket mean
    }

    public let delta: Double
    public let maxBucketsPerRow: Int
    public let clock: Int
    public let minSubwindowLength: Int
    /// rows[i] holds buckets of 2^i values, oldest first.
    var rows: [[Bucket]] = [[]]
    public private(set) var width = 0
    var total = 0.0
    var variance = 0.0
    var tick = 0
    /// Number of changes detected so far.
    public private(set) var detections = 0

    public init(delta: Double = 0.002, maxBucketsPerRow: Int = 5, clock: Int = 32, minSubwindowLength: Int = 5) {
        precondition(delta > 0 && delta < 1 && maxBucketsPerRow >= 2 && clock >= 1 && minSubwindowLength >= 1)
        self.delta = delta
        self.maxBucketsPerRow = maxBucketsPerRow
        self.clock = clock
        self.minSubwindowLength = minSubwindowLength
    }

    /// Mean of the current window (0 when empty).
    public var mean: Double { width > 0 ? total / Double(width) : 0 }

    /// Adds a value; returns `true` when a change was detected (the window then holds only the
    /// values after the change).
    @discardableResult
    public mutating func add(_ x: Double) -> Bool {
        guard x.isFinite else { return false }
        if width > 0 {
            let n = Double(width)
            variance += n * (x - total / n) * (x - total / n) / (n + 1)
        }
        width += 1
        total += x
        rows[0].append(Bucket(total: x, variance: 0))
        compress()
        tick += 1
        guard tick % clock == 0, width > 2 * minSubwindowLength else { return false }
        var changed = false
        while cutOldest() { changed = true }
        if changed { detections += 1 }
        return changed
    }

    private mutating func compress() {
        var i = 0
        while i < rows.count {
            guard rows[i].count > maxBucketsPerRow else { break }
            let a = rows[i][0], b = rows[i][1]
            rows[i].removeFirst(2)
            let size = Double(1 << i)
            let d = a.total / size - b.total / size
            let merged = Bucket(
                total: a.total + b.total, variance: a.variance + b.variance + size * size * d * d / (2 * size))
            if i + 1 == rows.count { rows.append([]) }
            rows[i + 1].append(merged)
            i += 1
        }
    }

    /// Tests every bucket boundary; drops the oldest bucket and returns `true` on a cut.
    private mutating func cutOldest() -> Bool {
        guard width > 2 * minSubwindowLength else { return false }
        let n = Double(width)
        let dd = Math.log(2 * Math.log(n) / delta)
        let v = variance / n
        var n0 = 0.0, t0 = 0.0
        for i in stride(from: rows.count - 1, through: 0, by: -1) {
            let size = Double(1 << i)
            for b in rows[i] {
                n0 += size
                t0 += b.total
                let n1 = n - n0
                guard n0 >= Double(minSubwindowLength), n1 >= Double(minSubwindowLength) else { continue }
                let u0 = t0 / n0, u1 = (total - t0) / n1
                let m = 1 / (n0 - Double(minSubwindowLength) + 1) + 1 / (n1 - Double(minSubwindowLength) + 1)
                let eps = (2 * m * v * dd).squareRoot() + 2.0 / 3.0 * dd * m
                if Swift.abs(u0 - u1) > eps {
                    dropOldestBucket()
                    return true
                }
            }
        }
        return false
    }

    private mutating func dropOldestBucket() {
        let top = rows.count - 1
        let b = rows[top].removeFirst()
        let nb = Double(1 << top)
        let n = Double(width)
        let rest = n - nb
        let restMean = (total - b.total) / rest
        variance -= b.variance + nb * rest / n * (b.total / nb - restMean) * (b.total / nb - restMean)
        variance = Swift.max(variance, 0)
        total -= b.total
        width -= Int(nb)
        while rows.count > 1 && rows[rows.count - 1].isEmpty { rows.removeLast() }
    }
}
