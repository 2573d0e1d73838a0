/// The mergeable profile of one categorical feature in one window: counts of the most frequent
/// values (``FrequentItems``, capacity 1,024, exact while there are ≤ 1,024 distinct values,
/// otherwise each count within ``FrequentItems/maximumError``), a distinct-count estimate
/// (``HyperLogLog``, 1.6 % standard error) and the number of missing values.
public struct CategoricalProfile: Sendable, Hashable {
    public private(set) var frequent: FrequentItems
    public private(set) var distinct: HyperLogLog
    /// Missing values (empty or null cells).
    public private(set) var missing: UInt64 = 0

    public init(capacity: Int = FrequentItems.defaultCapacity, precision: Int = HyperLogLog.defaultPrecision) {
        frequent = FrequentItems(capacity: capacity)
        distinct = HyperLogLog(precision: precision)
    }

    /// Non-missing values added.
    public var count: UInt64 { frequent.total }
    /// All values offered, including missing ones.
    public var total: UInt64 { frequent.total + missing }

    /// Adds one value. The HyperLogLog is only updated when the value is not already counted
    /// by the frequent-items summary: every counted value has been added to it before, and
    /// adding a value twice does not change a HyperLogLog.
    public mutating func add(_ value: String) {
        if frequent.insert(value, weight: 1) { distinct.add(value) }
    }

    /// Adds `weight` occurrences of `value` (the distinct estimate counts it once).
    public mutating func add(_ value: String, weight: UInt64) {
        if frequent.insert(value, weight: weight) { distinct.add(value) }
    }

    public mutating func addMissing(_ n: UInt64 = 1) { missing &+= n }

    public mutating func merge(_ other: CategoricalProfile) {
        frequent.merge(other.frequent)
        distinct.merge(other.distinct)
        missing &+= other.missing
    }

    /// Number of values in this profile whose category never appears in `reference`.
    ///
    /// Exact when both summaries are exact (``FrequentItems/maximumError`` = 0). Otherwise a
    /// category missing from the reference summary may still have occurred up to the reference's
    /// `maximumError` times, and this profile's counts are lower bounds.
    public func unseenCount(against reference: CategoricalProfile) -> UInt64 {
        var unseen: UInt64 = 0
        for (item, c) in frequent.counts where reference.frequent.counts[item] == nil { unseen &+= c }
        return unseen
    }
}

extension CategoricalProfile {
    static let magic: StaticString = "IQCP"
    static let version: UInt8 = 1

    /// Compact binary form (little-endian; varints are unsigned LEB128):
    ///
    /// ```
    /// "IQCP" magic, version u8 (= 1), missing varint
    /// frequent items: capacity varint, total varint, maximumError varint, n varint,
    ///                 n × (utf8 length varint, utf8 bytes, count varint), most frequent first
    /// hyperloglog: precision u8, mode u8 (0 sparse: n varint + n × (index u16, value u8);
    ///                                      1 dense: 2^precision bytes)
    /// ```
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + frequent.retainedCount * 12)
        encode(into: &w)
        return w.bytes
    }

    func encode(into w: inout ByteWriter) {
        w.write(magic: Self.magic, version: Self.version)
        w.writeVarint(missing)
        frequent.encode(into: &w)
        distinct.encode(into: &w)
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "CategoricalProfile")
        try self.init(decoding: &r)
        try r.finish()
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        try r.expect(magic: Self.magic, version: Self.version)
        missing = try r.readVarint()
        frequent = try FrequentItems(decoding: &r)
        distinct = try HyperLogLog(decoding: &r)
    }
}
