/// Binary building blocks shared by the window state and result formats (little-endian, varints
/// unsigned LEB128, as every profile format; docs/windows.md lists the layouts).
extension ByteWriter {
    mutating func write(int64 v: Int64) { write(UInt64(bitPattern: v)) }

    mutating func write(optionalInt64 v: Int64?) {
        write(UInt8(v == nil ? 0 : 1))
        if let v { write(int64: v) }
    }

    mutating func write(optionalDouble v: Double?) {
        write(UInt8(v == nil ? 0 : 1))
        if let v { write(v) }
    }

    mutating func write(optionalVarint v: UInt64?) {
        write(UInt8(v == nil ? 0 : 1))
        if let v { writeVarint(v) }
    }

    mutating func write(optionalString v: String?) {
        write(UInt8(v == nil ? 0 : 1))
        if let v { write(string: v) }
    }

    mutating func write(bool v: Bool) { write(UInt8(v ? 1 : 0)) }

    mutating func write(strings: [String]) {
        writeVarint(UInt64(strings.count))
        for s in strings { write(string: s) }
    }

    /// Tag u8 (0 numeric, 1 categorical), type mismatches varint, then the profile's own layout.
    mutating func write(profile: ColumnProfile) {
        write(string: profile.name)
        switch profile.content {
        case .numeric(let p):
            write(UInt8(0))
            writeVarint(profile.typeMismatches)
            p.encode(into: &self)
        case .categorical(let p):
            write(UInt8(1))
            writeVarint(profile.typeMismatches)
            p.encode(into: &self)
        }
    }

    /// start i64, version string, segment tag u8 (0 none, 1 value, 2 missing, 3 other), then for
    /// a segment its column and (tag 1) its value.
    mutating func write(key: WindowKey) {
        write(int64: key.startMs)
        write(string: key.version)
        guard let segment = key.segment else { return write(UInt8(0)) }
        switch segment.value {
        case .value(let v):
            write(UInt8(1))
            write(string: segment.column)
            write(string: v)
        case .missing:
            write(UInt8(2))
            write(string: segment.column)
        case .other:
            write(UInt8(3))
            write(string: segment.column)
        }
    }
}

extension ByteReader {
    /// Collections in the window formats hold at most this many elements.
    static let windowCollectionLimit = 1 << 20

    mutating func readInt64() throws(ProfileDecodingError) -> Int64 { Int64(bitPattern: try readUInt64()) }

    mutating func readFlag() throws(ProfileDecodingError) -> Bool {
        let b = try readUInt8()
        guard b <= 1 else { throw fail(.invalidValue, "flag \(b)") }
        return b == 1
    }

    mutating func readOptionalInt64() throws(ProfileDecodingError) -> Int64? {
        try readFlag() ? try readInt64() : nil
    }

    mutating func readOptionalDouble() throws(ProfileDecodingError) -> Double? {
        try readFlag() ? try readDouble() : nil
    }

    mutating func readOptionalVarint() throws(ProfileDecodingError) -> UInt64? {
        try readFlag() ? try readVarint() : nil
    }

    mutating func readOptionalString() throws(ProfileDecodingError) -> String? {
        try readFlag() ? try readString() : nil
    }

    mutating func readCount(_ field: String) throws(ProfileDecodingError) -> Int {
        try readCount(limit: Self.windowCollectionLimit, field)
    }

    mutating func readStrings() throws(ProfileDecodingError) -> [String] {
        var out: [String] = []
        for _ in 0..<(try readCount("string count")) { out.append(try readString()) }
        return out
    }

    mutating func readProfile() throws(ProfileDecodingError) -> ColumnProfile {
        let name = try readString()
        let tag = try readUInt8()
        let mismatches = try readVarint()
        switch tag {
        case 0:
            return ColumnProfile(
                name: name, content: .numeric(try NumericProfile(decoding: &self)), typeMismatches: mismatches)
        case 1:
            return ColumnProfile(
                name: name, content: .categorical(try CategoricalProfile(decoding: &self)), typeMismatches: mismatches)
        default: throw fail(.invalidValue, "column profile tag \(tag)")
        }
    }

    mutating func readProfiles() throws(ProfileDecodingError) -> [ColumnProfile] {
        var out: [ColumnProfile] = []
        for _ in 0..<(try readCount("column count")) { out.append(try readProfile()) }
        return out
    }

    mutating func readKey() throws(ProfileDecodingError) -> WindowKey {
        let start = try readInt64()
        let version = try readString()
        let tag = try readUInt8()
        var segment: Segment?
        switch tag {
        case 0: segment = nil
        case 1:
            let column = try readString()
            segment = Segment(column: column, value: .value(try readString()))
        case 2: segment = Segment(column: try readString(), value: .missing)
        case 3: segment = Segment(column: try readString(), value: .other)
        default: throw fail(.invalidValue, "segment tag \(tag)")
        }
        return WindowKey(startMs: start, series: SeriesKey(version: version, segment: segment))
    }
}

extension ReferenceProfile {
    static let magic: StaticString = "IQRP"
    static let version: UInt8 = 2

    /// Compact binary form: "IQRP", version u8 (= 2; 1 is read too), rows varint, span (flag u8,
    /// i64), columns (count varint, each a column profile), prediction (flag u8, column profile),
    /// labelled scores (version 2: flag u8, score histogram).
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        encode(into: &w)
        return w.bytes
    }

    func encode(into w: inout ByteWriter) {
        w.write(magic: Self.magic, version: Self.version)
        w.writeVarint(rows)
        w.write(optionalInt64: spanMs)
        w.writeVarint(UInt64(columns.count))
        for c in columns { w.write(profile: c) }
        w.write(bool: prediction != nil)
        if let prediction { w.write(profile: prediction) }
        w.write(bool: labelled != nil)
        labelled?.encode(into: &w)
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "ReferenceProfile")
        try self.init(decoding: &r)
        try r.finish()
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let version = try r.expect(magic: Self.magic, versions: 1...Self.version)
        rows = try r.readVarint()
        spanMs = try r.readOptionalInt64()
        columns = try r.readProfiles()
        prediction = try r.readFlag() ? try r.readProfile() : nil
        if version >= 2, try r.readFlag() { labelled = try ScoreHistogram(decoding: &r) }
    }
}
