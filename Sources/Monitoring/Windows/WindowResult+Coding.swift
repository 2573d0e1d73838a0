extension WindowResult {
    static let magic: StaticString = "IQWR"
    static let version: UInt8 = 5

    /// Compact binary form for storage: deterministic (equal results give equal bytes; doubles
    /// are stored as their bit patterns, so nothing is rounded on the way to disk and back).
    /// ```
    /// "IQWR", version u8 (= 5; 1 to 4 are read too: 1 lacks the unusable rows, 1 and 2 the
    /// performance state, 1 to 3 the estimates, all four the attributions), key, end i64, open u8, rows varint, late rows varint,
    /// drifted count varint, drift share f64, dataset drift u8, expected rows (flag, f64),
    /// schema: added, missing, changed type (each count varint + strings),
    /// features (count varint, each a feature), prediction (flag, feature),
    /// performance (flag; labelled rows varint, unusable rows varint (version 2), count varint,
    ///              each name string + value f64;
    ///              then (version 3) state (flag, ``PerformanceState``),
    ///              then (version 4) estimated (count varint, each name string + value f64 +
    ///              sampling error f64 + lower f64 + upper f64)),
    /// attributions (version 5: count varint, each feature string + mean |a| f64 + reference (flag, f64))
    /// feature: name string, type u8 (0 numeric, 1 categorical), method (flag, name string),
    ///          score (flag, f64), threshold (flag, f64), drift u8, note (flag, string),
    ///          values varint, missing rate f64, missing rate change (flag, f64),
    ///          type mismatches varint, non-finite varint, outside spec range (flag, f64),
    ///          outside reference range (flag, f64), new categories (flag, varint),
    ///          new category values (flag, varint)
    /// ```
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 128 + features.count * 64)
        w.write(magic: Self.magic, version: Self.version)
        w.write(key: key)
        w.write(int64: endMs)
        w.write(bool: isOpen)
        w.writeVarint(rows)
        w.writeVarint(lateRows)
        w.writeVarint(UInt64(driftedCount))
        w.write(driftShare)
        w.write(bool: datasetDrift)
        w.write(optionalDouble: expectedRows)
        w.write(strings: schema.added)
        w.write(strings: schema.missing)
        w.write(strings: schema.changedType)
        w.writeVarint(UInt64(features.count))
        for f in features { f.encode(into: &w) }
        w.write(bool: prediction != nil)
        prediction?.encode(into: &w)
        w.write(bool: performance != nil)
        if let performance {
            w.writeVarint(performance.labelledRows)
            w.writeVarint(performance.unusableRows)
            w.writeVarint(UInt64(performance.metrics.count))
            for m in performance.metrics {
                w.write(string: m.name)
                w.write(m.value)
            }
            w.write(bool: performanceState != nil)
            performanceState?.encode(into: &w)
            w.writeVarint(UInt64(performance.estimated.count))
            for e in performance.estimated {
                w.write(string: e.name)
                w.write(e.value)
                w.write(e.samplingError)
                w.write(e.lower)
                w.write(e.upper)
            }
        }
        w.writeVarint(UInt64(attributions.count))
        for a in attributions {
            w.write(string: a.feature)
            w.write(a.meanAbsolute)
            w.write(optionalDouble: a.referenceMeanAbsolute)
        }
        return w.bytes
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "WindowResult")
        let version = try r.expect(magic: Self.magic, versions: 1...Self.version)
        key = try r.readKey()
        endMs = try r.readInt64()
        isOpen = try r.readFlag()
        rows = try r.readVarint()
        lateRows = try r.readVarint()
        driftedCount = try r.readCount("drifted count")
        driftShare = try r.readDouble()
        datasetDrift = try r.readFlag()
        expectedRows = try r.readOptionalDouble()
        schema.added = try r.readStrings()
        schema.missing = try r.readStrings()
        schema.changedType = try r.readStrings()
        for _ in 0..<(try r.readCount("feature count")) { features.append(try FeatureResult(decoding: &r)) }
        prediction = try r.readFlag() ? try FeatureResult(decoding: &r) : nil
        if try r.readFlag() {
            let labelled = try r.readVarint()
            let unusable = version >= 2 ? try r.readVarint() : 0
            var metrics: [(name: String, value: Double)] = []
            for _ in 0..<(try r.readCount("metric count")) {
                let name = try r.readString()
                metrics.append((name: name, value: try r.readDouble()))
            }
            performance = WindowPerformance(metrics: metrics, labelledRows: labelled, unusableRows: unusable)
            if version >= 3, try r.readFlag() { performanceState = try PerformanceState(decoding: &r) }
            if version >= 4 {
                var estimated: [EstimatedMetric] = []
                for _ in 0..<(try r.readCount(limit: 64, "estimated metric count")) {
                    let name = try r.readString(maxLength: 64)
                    let e = EstimatedMetric(
                        name: name, value: try r.readDouble(), samplingError: try r.readDouble(),
                        lower: try r.readDouble(), upper: try r.readDouble())
                    guard e.value.isFinite, e.samplingError.isFinite, e.lower.isFinite, e.upper.isFinite else {
                        throw r.fail(.invalidValue, "estimated \(name) is not finite")
                    }
                    estimated.append(e)
                }
                performance!.estimated = estimated
            }
        }
        if version >= 5 {
            for _ in 0..<(try r.readCount("attribution count")) {
                let feature = try r.readString()
                attributions.append(
                    AttributionResult(
                        feature: feature, meanAbsolute: try r.readDouble(),
                        referenceMeanAbsolute: try r.readOptionalDouble()))
            }
        }
        try r.finish()
    }
}

extension FeatureResult {
    func encode(into w: inout ByteWriter) {
        w.write(string: name)
        w.write(UInt8(type == .numeric ? 0 : 1))
        w.write(optionalString: method?.rawValue)
        w.write(optionalDouble: score)
        w.write(optionalDouble: threshold)
        w.write(bool: drift)
        w.write(optionalString: note)
        w.writeVarint(values)
        w.write(missingRate)
        w.write(optionalDouble: missingRateChange)
        w.writeVarint(typeMismatches)
        w.writeVarint(nonFinite)
        w.write(optionalDouble: outsideSpecRangeShare)
        w.write(optionalDouble: outsideReferenceRangeShare)
        w.write(optionalVarint: newCategories)
        w.write(optionalVarint: newCategoryValues)
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let name = try r.readString()
        let tag = try r.readUInt8()
        guard tag <= 1 else { throw r.fail(.invalidValue, "column type \(tag)") }
        self.init(name: name, type: tag == 0 ? .numeric : .categorical)
        if let m = try r.readOptionalString() {
            guard let parsed = DriftMethod(rawValue: m) else { throw r.fail(.invalidValue, "drift method \(m)") }
            method = parsed
        }
        score = try r.readOptionalDouble()
        threshold = try r.readOptionalDouble()
        drift = try r.readFlag()
        note = try r.readOptionalString()
        values = try r.readVarint()
        missingRate = try r.readDouble()
        missingRateChange = try r.readOptionalDouble()
        typeMismatches = try r.readVarint()
        nonFinite = try r.readVarint()
        outsideSpecRangeShare = try r.readOptionalDouble()
        outsideReferenceRangeShare = try r.readOptionalDouble()
        newCategories = try r.readOptionalVarint()
        newCategoryValues = try r.readOptionalVarint()
    }
}
