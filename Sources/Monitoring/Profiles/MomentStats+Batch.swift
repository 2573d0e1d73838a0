extension MomentStats {
    /// Adds many values; equal (up to rounding) to calling ``add(_:)`` for each, but computes
    /// each chunk's mean and M2 with two vectorizable passes and merges them (Chan et al.).
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        let chunk = 4096
        var start = 0
        while start < values.count {
            let end = Swift.min(start + chunk, values.count)
            var n = 0, nan = 0, inf = 0
            var sum = 0.0
            var lo = Double.infinity, hi = -Double.infinity
            for i in start..<end {
                let x = values[i]
                if x.isFinite {
                    n += 1
                    sum += x
                    lo = x < lo ? x : lo
                    hi = x > hi ? x : hi
                } else if x.isNaN {
                    nan += 1
                } else {
                    inf += 1
                }
            }
            var part = MomentStats(
                count: UInt64(n), missing: UInt64(nan), nonFinite: UInt64(inf),
                min: lo, max: hi, mean: 0, m2: 0)
            if n > 0 {
                let mean = sum / Double(n)
                var m2 = 0.0
                var correction = 0.0
                for i in start..<end {
                    let x = values[i]
                    if x.isFinite {
                        let d = x - mean
                        m2 += d * d
                        correction += d
                    }
                }
                // Corrected two-pass formula: removes the rounding error of `mean`.
                m2 -= correction * correction / Double(n)
                part = MomentStats(
                    count: UInt64(n), missing: UInt64(nan), nonFinite: UInt64(inf),
                    min: lo, max: hi, mean: mean + correction / Double(n), m2: Swift.max(m2, 0))
            }
            merge(part)
            start = end
        }
    }

    /// Population standard deviation (0 when fewer than two values).
    public var standardDeviation: Double { variance.squareRoot() }

    func encode(into w: inout ByteWriter) {
        w.write(count)
        w.write(missing)
        w.write(nonFinite)
        w.write(min)
        w.write(max)
        w.write(mean)
        w.write(m2)
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let count = try r.readUInt64(), missing = try r.readUInt64(), nonFinite = try r.readUInt64()
        let lo = try r.readDouble(), hi = try r.readDouble(), mean = try r.readDouble(), m2 = try r.readDouble()
        if count == 0 {
            guard lo == .infinity, hi == -.infinity, mean == 0, m2 == 0 else {
                throw r.fail(.invalidValue, "moments of an empty column are not zero")
            }
        } else {
            guard lo.isFinite, hi.isFinite, lo <= hi, mean.isFinite, m2.isFinite, m2 >= 0 else {
                throw r.fail(.invalidValue, "invalid moments")
            }
        }
        self.init(count: count, missing: missing, nonFinite: nonFinite, min: lo, max: hi, mean: mean, m2: m2)
    }
}
