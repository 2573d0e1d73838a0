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
            if n > 0 && lo == hi {
                // A constant chunk: exact mean, no spread (the two-pass sums below would round).
                part = MomentStats(
                    count: UInt64(n), missing: UInt64(nan), nonFinite: UInt64(inf),
                    min: lo, max: hi, mean: lo, m2: 0)
            } else if n > 0 {
                // Work in units of 2^s (see MomentStats): 1 for ordinary data, so no extra pass.
                let s = Self.scale(min: lo, max: hi)
                let unit = Self.scaled(1, by: -s)
                if s != 0 {
                    sum = 0
                    for i in start..<end where values[i].isFinite { sum += values[i] * unit }
                }
                let mean = sum / Double(n)
                var m2 = 0.0
                var correction = 0.0
                for i in start..<end {
                    let x = values[i]
                    if x.isFinite {
                        let d = x * unit - mean
                        m2 += d * d
                        correction += d
                    }
                }
                // Corrected two-pass formula: removes the rounding error of `mean`.
                m2 -= correction * correction / Double(n)
                let partMean = Self.scaled(mean + correction / Double(n), by: s)
                part = MomentStats(
                    count: UInt64(n), missing: UInt64(nan), nonFinite: UInt64(inf),
                    min: lo, max: hi, mean: Swift.min(Swift.max(partMean, lo), hi), m2: Swift.max(m2, 0))
            }
            merge(part)
            start = end
        }
    }

    /// Writes the moments; the M2 field holds ``scaledM2``, which equals M2 whenever ``scale`` is
    /// 0 (the layout of format version 1).
    func encode(into w: inout ByteWriter) {
        w.write(count)
        w.write(missing)
        w.write(nonFinite)
        w.write(min)
        w.write(max)
        w.write(mean)
        w.write(scaledM2)
    }

    /// Reads ``encode(into:)`` output.
    /// - Parameters:
    ///   - scaledM2: whether the M2 field is stored divided by 4^scale (format version 2); version
    ///     1 stored plain M2, which is rescaled here.
    init(decoding r: inout ByteReader, scaledM2: Bool) throws(ProfileDecodingError) {
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
        let stored = scaledM2 || count == 0 ? m2 : Self.scaled(m2, by: -2 * Self.scale(min: lo, max: hi))
        self.init(count: count, missing: missing, nonFinite: nonFinite, min: lo, max: hi, mean: mean, m2: stored)
    }
}
