extension TDigest {
    static let magic: StaticString = "IQTD"
    static let version: UInt8 = 1

    /// The digest's compact binary form (little-endian):
    ///
    /// ```
    /// "IQTD"  4 bytes magic          version  u8 (= 1)
    /// δ       u16                    count    u64
    /// min, max f64, f64 (+inf/-inf when empty)
    /// C       varint, then C × (mean f64, low f64, high f64, weight varint)   (means ascending)
    /// B       varint, then B × f64                          (buffered values, arrival order)
    /// ```
    /// Decoding checks that `count` equals the weights plus the buffer, that values are finite,
    /// within `[min, max]` and sorted where required, that low ≤ mean ≤ high, and that C and B
    /// fit their bounds.
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 40 + centroids.count * 28 + buffer.count * 8)
        encode(into: &w)
        return w.bytes
    }

    func encode(into w: inout ByteWriter) {
        w.write(magic: Self.magic, version: Self.version)
        w.write(UInt16(compression))
        w.write(count)
        w.write(min)
        w.write(max)
        w.writeVarint(UInt64(centroids.count))
        for c in centroids {
            w.write(c.mean)
            w.write(c.low)
            w.write(c.high)
            w.writeVarint(UInt64(c.weight))
        }
        w.writeVarint(UInt64(buffer.count))
        for x in buffer { w.write(x) }
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on any corruption.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "TDigest")
        try self.init(decoding: &r)
        try r.finish()
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        try r.expect(magic: Self.magic, version: Self.version)
        let compression = Int(try r.readUInt16())
        guard compression >= 20 && compression <= 10000 else {
            throw r.fail(.invalidValue, "compression \(compression) outside 20...10000")
        }
        let count = try r.readUInt64()
        let lo = try r.readDouble(), hi = try r.readDouble()
        if count == 0 {
            guard lo == .infinity && hi == -.infinity else { throw r.fail(.invalidValue, "empty digest with a range") }
        } else {
            guard lo.isFinite && hi.isFinite && lo <= hi else { throw r.fail(.invalidValue, "invalid min/max") }
        }
        // The K₂ pass leaves about δ/2 centroids at any count; 4δ leaves room for any input order.
        let centroids = try r.readCount(limit: 4 * compression, "centroid count")
        var list: [Centroid] = []
        var total: UInt64 = 0
        for _ in 0..<centroids {
            let m = try r.readDouble(), low = try r.readDouble(), high = try r.readDouble()
            let c = try r.readVarint()
            guard low >= lo && low <= m && m <= high && high <= hi else {
                throw r.fail(.invalidValue, "centroid outside [min, max] or its own range")
            }
            if let last = list.last, last.mean > m { throw r.fail(.invalidValue, "centroids not sorted") }
            let (sum, overflow) = total.addingReportingOverflow(c)
            guard c > 0, !overflow, c <= UInt64(1) << 53, c > 1 || low == high else {
                throw r.fail(.invalidValue, "centroid weight")
            }
            total = sum
            list.append(Centroid(mean: m, weight: Double(c), low: low, high: high))
        }
        let buffered = try r.readCount(limit: Self.bufferCapacity - 1, "buffer size")
        var buffer: [Double] = []
        for _ in 0..<buffered {
            let x = try r.readDouble()
            guard x.isFinite && x >= lo && x <= hi else {
                throw r.fail(.invalidValue, "buffered value outside [min, max]")
            }
            buffer.append(x)
        }
        guard total &+ UInt64(buffered) == count else {
            throw r.fail(.invalidValue, "count \(count) does not match the centroids and buffer")
        }
        self.init(compression: compression)
        self.count = count
        self.min = lo
        self.max = hi
        self.centroids = list
        self.buffer = buffer
    }
}
