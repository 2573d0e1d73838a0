extension ModelWindows {
    static let magic: StaticString = "IQMW"
    static let version: UInt8 = 3

    /// The whole state (settings, open windows, watermark, tracked segment values, references) as
    /// bytes; ``init(serialized:)`` restores a value that behaves identically on every later op.
    ///
    /// Deterministic: maps are written in key order, so equal states give equal bytes.
    /// ```
    /// "IQMW", version u8 (= 3; 1 and 2 are read too: their accumulators lack the scores, and
    /// 1's the performance)
    /// settings: size i64, lateness i64, max ahead i64, max segment values varint,
    ///           max open windows varint, max reference versions varint,
    ///           reference policy u8 (0 uploaded, 1 first rows + rows varint, 2 previous window),
    ///           segment columns (count varint, strings)
    /// watermark: max event (flag, i64), closed before i64, last data (flag, i64)
    /// segment values: per segment column, count varint + strings (first arrival order)
    /// open windows: count varint, each key + accumulator, in key order
    /// references: versions (LRU order), uploaded (count, version + reference profile),
    ///             first rows (count, series key + min i64 + max i64 + accumulator),
    ///             previous (count, series key + reference profile)
    /// accumulator: rows varint, columns (count varint, column profiles), prediction (flag, profile),
    ///              performance (flag, ``PerformanceState``; version 2),
    ///              scores (flag, ``PredictionScores``; version 3)
    /// ```
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        w.write(magic: Self.magic, version: Self.version)
        let s = settings
        w.write(int64: s.sizeMs)
        w.write(int64: s.latenessMs)
        w.write(int64: s.maxEventAheadMs)
        w.writeVarint(UInt64(s.maxSegmentValues))
        w.writeVarint(UInt64(s.maxOpenWindows))
        w.writeVarint(UInt64(s.maxReferenceVersions))
        switch s.reference {
        case .uploaded: w.write(UInt8(0))
        case .firstRows(let n):
            w.write(UInt8(1))
            w.writeVarint(n)
        case .previousWindow: w.write(UInt8(2))
        }
        w.write(strings: s.segmentColumns)
        w.write(optionalInt64: maxEventMs)
        w.write(int64: closedBeforeMs)
        w.write(optionalInt64: lastDataMs)
        for values in segmentValues { w.write(strings: values) }
        w.writeVarint(UInt64(open.count))
        for key in open.keys.sorted() {
            w.write(key: key)
            open[key]!.encode(into: &w)
        }
        w.write(strings: references.versions)
        w.writeVarint(UInt64(references.uploaded.count))
        for version in references.uploaded.keys.sorted() {
            w.write(string: version)
            references.uploaded[version]!.encode(into: &w)
        }
        w.writeVarint(UInt64(references.firstRows.count))
        for series in references.firstRows.keys.sorted() {
            let state = references.firstRows[series]!
            w.write(key: WindowKey(startMs: 0, series: series))
            w.write(int64: state.minEventMs)
            w.write(int64: state.maxEventMs)
            state.profiles.encode(into: &w)
        }
        w.writeVarint(UInt64(references.previous.count))
        for series in references.previous.keys.sorted() {
            w.write(key: WindowKey(startMs: 0, series: series))
            references.previous[series]!.encode(into: &w)
        }
        return w.bytes
    }

    /// Restores ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "ModelWindows")
        let version = try r.expect(magic: Self.magic, versions: 1...Self.version)
        let size = try r.readInt64(), lateness = try r.readInt64(), ahead = try r.readInt64()
        let maxValues = try r.readCount("max segment values")
        let maxOpen = try r.readCount("max open windows")
        let maxVersions = try r.readCount("max reference versions")
        let policy: ReferencePolicy
        switch try r.readUInt8() {
        case 0: policy = .uploaded
        case 1: policy = .firstRows(try r.readVarint())
        case 2: policy = .previousWindow
        case let tag: throw r.fail(.invalidValue, "reference policy \(tag)")
        }
        let columns = try r.readStrings()
        guard size > 0, lateness >= 0, ahead >= 0, maxOpen >= 1, maxVersions >= 1 else {
            throw r.fail(.invalidValue, "window settings out of range")
        }
        self.init(
            settings: WindowSettings(
                sizeMs: size, latenessMs: lateness, segmentColumns: columns, maxSegmentValues: maxValues,
                maxOpenWindows: maxOpen, maxEventAheadMs: ahead, maxReferenceVersions: maxVersions, reference: policy))
        maxEventMs = try r.readOptionalInt64()
        closedBeforeMs = try r.readInt64()
        lastDataMs = try r.readOptionalInt64()
        for c in columns.indices {
            segmentValues[c] = try r.readStrings()
            guard segmentValues[c].count <= maxValues else { throw r.fail(.invalidValue, "too many segment values") }
        }
        for _ in 0..<(try r.readCount("open window count")) {
            let key = try r.readKey()
            open[key] = try WindowAccumulator(decoding: &r, version: version)
        }
        references.versions = try r.readStrings()
        for _ in 0..<(try r.readCount("uploaded reference count")) {
            let version = try r.readString()
            references.uploaded[version] = try ReferenceProfile(decoding: &r)
        }
        for _ in 0..<(try r.readCount("first-rows reference count")) {
            let series = try r.readKey().series
            var state = FirstRows()
            state.minEventMs = try r.readInt64()
            state.maxEventMs = try r.readInt64()
            state.profiles = try WindowAccumulator(decoding: &r, version: version)
            references.firstRows[series] = state
        }
        for _ in 0..<(try r.readCount("previous-window reference count")) {
            let series = try r.readKey().series
            references.previous[series] = try ReferenceProfile(decoding: &r)
        }
        try r.finish()
    }
}

extension WindowAccumulator {
    func encode(into w: inout ByteWriter) {
        w.writeVarint(rows)
        w.writeVarint(UInt64(columns.count))
        for c in columns { w.write(profile: c.profile) }
        w.write(bool: prediction != nil)
        if let prediction { w.write(profile: prediction.profile) }
        w.write(bool: performance != nil)
        performance?.encode(into: &w)
        w.write(bool: scores != nil)
        scores?.encode(into: &w)
    }

    init(decoding r: inout ByteReader, version: UInt8) throws(ProfileDecodingError) {
        rows = try r.readVarint()
        for p in try r.readProfiles() {
            guard index[p.name] == nil else { throw r.fail(.invalidValue, "duplicate column \(p.name)") }
            index[p.name] = columns.count
            columns.append(ColumnAccumulator(p))
        }
        prediction = try r.readFlag() ? ColumnAccumulator(try r.readProfile()) : nil
        if version >= 2, try r.readFlag() { performance = try PerformanceState(decoding: &r) }
        if version >= 3, try r.readFlag() { scores = try PredictionScores(decoding: &r) }
    }
}
