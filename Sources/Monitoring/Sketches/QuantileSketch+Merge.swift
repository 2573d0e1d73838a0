extension QuantileSketch {
    /// Merges another sketch into this one; the result answers for the union of both inputs.
    ///
    /// The rank-error bound of this sketch's `k` still holds after any number of merges. Merging
    /// a sketch with a smaller `k` gives at most that sketch's (larger) error.
    public mutating func merge(_ other: QuantileSketch) {
        guard !other.isEmpty else { return }
        let height = Swift.max(numLevels, other.numLevels)
        var levels: [[Double]] = []
        levels.reserveCapacity(height + 1)
        for h in 0..<height {
            let mine = h < numLevels ? Array(items[levelStart[h]..<levelStart[h + 1]]) : []
            let theirs = h < other.numLevels ? Array(other.items[other.levelStart[h]..<other.levelStart[h + 1]]) : []
            levels.append(h == 0 ? mine + theirs : Self.mergeSorted(mine, theirs))
        }
        count &+= other.count
        if other.min < min { min = other.min }
        if other.max > max { max = other.max }

        var retained = levels.reduce(0) { $0 + $1.count }
        while retained > Self.totalCapacity(k: k, numLevels: levels.count) {
            let height = levels.count
            var h = 0
            while h < height && levels[h].count < Self.levelCapacity(k: k, numLevels: height, height: h) { h += 1 }
            precondition(h < height)
            if h == height - 1 { levels.append([]) }
            retained -= compact(&levels, h)
        }
        pack(levels)
    }

    /// Compacts `levels[h]` into `levels[h + 1]`; returns how many items were removed.
    private mutating func compact(_ levels: inout [[Double]], _ h: Int) -> Int {
        var level = levels[h]
        if h == 0 { level.sort() }
        let odd = level.count & 1 == 1
        let popStart = odd ? 1 : 0
        let coin = Int(rng.next() >> 63)
        var promoted: [Double] = []
        promoted.reserveCapacity(level.count / 2)
        var i = popStart + coin
        while i < level.count {
            promoted.append(level[i])
            i += 2
        }
        let removed = level.count - (odd ? 1 : 0) - promoted.count
        levels[h + 1] = Self.mergeSorted(levels[h + 1], promoted)
        levels[h] = odd ? [level[0]] : []
        return removed
    }

    /// Lays `levels` out in a fresh flat buffer sized to the total capacity (one level: to
    /// ``singleLevelCapacity(retained:k:)``).
    mutating func pack(_ levels: [[Double]]) {
        let retained = levels.reduce(0) { $0 + $1.count }
        let total =
            levels.count == 1
            ? Swift.max(Self.singleLevelCapacity(retained: retained, k: k), retained)
            : Swift.max(Self.totalCapacity(k: k, numLevels: levels.count), retained)
        var buffer = ContiguousArray<Double>(repeating: 0, count: total)
        var starts = ContiguousArray<Int>(repeating: total, count: levels.count + 1)
        var end = total
        for h in stride(from: levels.count - 1, through: 0, by: -1) {
            let start = end - levels[h].count
            for (i, v) in levels[h].enumerated() { buffer[start + i] = v }
            starts[h] = start
            end = start
        }
        items = buffer
        levelStart = starts
    }

    static func mergeSorted(_ a: [Double], _ b: [Double]) -> [Double] {
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        var out: [Double] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count && j < b.count {
            if a[i] <= b[j] {
                out.append(a[i])
                i += 1
            } else {
                out.append(b[j])
                j += 1
            }
        }
        out.append(contentsOf: a[i...])
        out.append(contentsOf: b[j...])
        return out
    }

    /// The retained items of each level (level 0 unsorted), for tests and serialization.
    var levelItems: [[Double]] {
        (0..<numLevels).map { Array(items[levelStart[$0]..<levelStart[$0 + 1]]) }
    }
}

extension QuantileSketch {
    static let magic: StaticString = "IQKS"
    static let version: UInt8 = 1

    /// The sketch's compact binary form (little-endian):
    ///
    /// ```
    /// "IQKS"  4 bytes magic          version  u8 (= 1)
    /// k       u16                    levels   u8 (L, 1...61)
    /// count   u64                    min, max f64, f64 (+inf/-inf when empty)
    /// rng     u64 (generator state)
    /// size[h] varint × L             (items retained at level h, weight 2^h)
    /// items   f64 × Σ size           (level 0 first; level 0 in any order, others ascending)
    /// ```
    /// Decoding checks that `count == Σ size[h]·2^h`, that items are finite, within
    /// `[min, max]`, sorted where required, and fit the capacity for `k` and `L`.
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 40 + retainedCount * 8)
        encode(into: &w)
        return w.bytes
    }

    func encode(into w: inout ByteWriter) {
        w.write(magic: Self.magic, version: Self.version)
        w.write(UInt16(k))
        w.write(UInt8(numLevels))
        w.write(count)
        w.write(min)
        w.write(max)
        w.write(rng.state)
        for h in 0..<numLevels { w.writeVarint(UInt64(levelStart[h + 1] - levelStart[h])) }
        for i in levelStart[0]..<items.count { w.write(items[i]) }
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on any corruption.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "QuantileSketch")
        try self.init(decoding: &r)
        try r.finish()
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        try r.expect(magic: Self.magic, version: Self.version)
        let k = Int(try r.readUInt16())
        guard k >= 8 else { throw r.fail(.invalidValue, "k \(k) below 8") }
        let numLevels = Int(try r.readUInt8())
        guard numLevels >= 1 && numLevels <= 61 else { throw r.fail(.invalidValue, "level count \(numLevels)") }
        let count = try r.readUInt64()
        let lo = try r.readDouble(), hi = try r.readDouble()
        let state = try r.readUInt64()
        let capacity = Self.totalCapacity(k: k, numLevels: numLevels)
        var sizes: [Int] = []
        var weight: UInt64 = 0
        var retained = 0
        for h in 0..<numLevels {
            let s = try r.readCount(limit: capacity, "level size")
            retained += s
            guard retained <= capacity else {
                throw r.fail(.invalidValue, "retained items exceed capacity \(capacity)")
            }
            let (part, o1) = UInt64(s).multipliedReportingOverflow(by: UInt64(1) << UInt64(h))
            let (sum, o2) = weight.addingReportingOverflow(part)
            guard !o1 && !o2 else { throw r.fail(.invalidValue, "weights overflow") }
            weight = sum
            sizes.append(s)
        }
        guard weight == count else {
            throw r.fail(.invalidValue, "count \(count) does not match level weights \(weight)")
        }
        if count == 0 {
            guard lo == .infinity && hi == -.infinity else { throw r.fail(.invalidValue, "empty sketch with a range") }
        } else {
            guard lo.isFinite && hi.isFinite && lo <= hi else { throw r.fail(.invalidValue, "invalid min/max") }
        }
        var levels: [[Double]] = []
        for h in 0..<numLevels {
            var level: [Double] = []
            level.reserveCapacity(sizes[h])
            for _ in 0..<sizes[h] {
                let v = try r.readDouble()
                guard v.isFinite && v >= lo && v <= hi else { throw r.fail(.invalidValue, "item outside [min, max]") }
                if h > 0, let last = level.last, last > v { throw r.fail(.invalidValue, "level \(h) not sorted") }
                level.append(v)
            }
            levels.append(level)
        }
        self.init(k: k, seed: state)
        self.count = count
        self.min = lo
        self.max = hi
        pack(levels)
    }
}

extension QuantileSketch {
    /// Σ weight·f(item) over the retained items, divided by the count: an unbiased estimate of
    /// the mean of f over every value inserted (each retained item of level h stands for 2^h of
    /// them). Unlike a mean over quantiles it sees the tails, as far as the sketch kept them.
    public func estimatedMean(of f: (Double) -> Double) -> Double {
        guard count > 0 else { return .nan }
        var sum = 0.0
        for level in 0..<(levelStart.count - 1) {
            let weight = Double(UInt64(1) << UInt64(level))
            for i in levelStart[level]..<levelStart[level + 1] { sum += weight * f(items[i]) }
        }
        return sum / Double(count)
    }
}
