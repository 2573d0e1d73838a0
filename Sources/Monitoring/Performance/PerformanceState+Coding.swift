/// The binary form of ``PerformanceState``, inside a window accumulator's (deterministic: equal
/// states give equal bytes).
/// ```
/// task u8 (0 binary: threshold f64; 1 multiclass: classes (count varint + strings); 2 regression)
/// unusable rows varint, then the task's state:
/// classification: classes varint, confusion (K×K varints), log-loss sum f64, Brier sum f64,
///     scored varint, histograms (count varint; each bins varint, non-empty bins count varint,
///     each bin index varint + positives varint + negatives varint),
///     calibration score sums (count varint, f64 each)
/// regression: count varint, |error| sum f64, error² sum f64, |error| / |actual| sum f64,
///     actual moments, error sketch, |error| sketch
/// ```
extension PerformanceState {
    func encode(into w: inout ByteWriter) {
        switch task {
        case .binary(let threshold):
            w.write(UInt8(0))
            w.write(threshold)
        case .multiclass(let classes):
            w.write(UInt8(1))
            w.write(strings: classes)
        case .regression:
            w.write(UInt8(2))
        }
        w.writeVarint(unusableRows)
        if let c = classification {
            w.writeVarint(UInt64(c.classCount))
            for n in c.confusion { w.writeVarint(n) }
            w.write(c.logLossSum)
            w.write(c.brierSum)
            w.writeVarint(c.scoredCount)
            w.writeVarint(UInt64(c.histograms.count))
            for h in c.histograms { h.encode(into: &w) }
            w.writeVarint(UInt64(c.calibrationScoreSums.count))
            for s in c.calibrationScoreSums { w.write(s) }
        }
        if let g = regression {
            w.writeVarint(g.count)
            w.write(g.absoluteErrorSum)
            w.write(g.squaredErrorSum)
            w.write(g.absolutePercentageErrorSum)
            g.actual.encode(into: &w)
            g.errors.encode(into: &w)
            g.absoluteErrors.encode(into: &w)
        }
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        switch try r.readUInt8() {
        case 0:
            let threshold = try r.readDouble()
            guard threshold.isFinite else { throw r.fail(.invalidValue, "threshold \(threshold)") }
            self.init(task: .binary(threshold: threshold))
        case 1: self.init(task: .multiclass(classes: try r.readStrings()))
        case 2: self.init(task: .regression)
        case let other: throw r.fail(.invalidValue, "performance task \(other)")
        }
        unusableRows = try r.readVarint()
        if classification != nil {
            let k = try r.readCount(limit: 4_096, "class count")
            guard k == classification!.classCount else {
                throw r.fail(.invalidValue, "\(k) classes for \(classification!.classCount)")
            }
            for i in 0..<(k * k) { classification!.confusion[i] = try r.readVarint() }
            classification!.logLossSum = try r.readDouble()
            classification!.brierSum = try r.readDouble()
            classification!.scoredCount = try r.readVarint()
            let histograms = try r.readCount(limit: k, "histogram count")
            guard histograms == classification!.histograms.count else {
                throw r.fail(.invalidValue, "\(histograms) score histograms")
            }
            for i in 0..<histograms {
                // Exactly the bins the task's state is made with (ECE and merges read them by index).
                let bins = classification!.histograms[i].binCount
                classification!.histograms[i] = try ScoreHistogram(decoding: &r, binCount: bins)
            }
            let sums = try r.readCount(limit: ClassificationState.calibrationBins, "calibration bins")
            // Exactly the bins the state's own histogram shape gives (ECE reads them by index).
            guard
                sums == classification!.calibrationScoreSums.count
                    || (sums == ClassificationState.calibrationBins && k == 2
                        && classification!.histograms[0].binCount % sums == 0)
            else { throw r.fail(.invalidValue, "\(sums) calibration bins") }
            var calibration: [Double] = []
            for _ in 0..<sums { calibration.append(try r.readDouble()) }
            classification!.calibrationScoreSums = calibration
        }
        if regression != nil {
            regression!.count = try r.readVarint()
            regression!.absoluteErrorSum = try r.readDouble()
            regression!.squaredErrorSum = try r.readDouble()
            regression!.absolutePercentageErrorSum = try r.readDouble()
            regression!.actual = try MomentStats(decoding: &r, scaledM2: true)
            regression!.errors = try QuantileSketch(decoding: &r)
            regression!.absoluteErrors = try QuantileSketch(decoding: &r)
        }
    }
}

/// ```
/// bins varint, non-empty bins count varint, each bin index varint + positives varint + negatives varint
/// ```
extension ScoreHistogram {
    func encode(into w: inout ByteWriter) {
        w.writeVarint(UInt64(binCount))
        let used = (0..<binCount).filter { positives[$0] != 0 || negatives[$0] != 0 }
        w.writeVarint(UInt64(used.count))
        for b in used {
            w.writeVarint(UInt64(b))
            w.writeVarint(positives[b])
            w.writeVarint(negatives[b])
        }
    }

    /// Decodes a histogram that must have `binCount` bins (anything else is refused before any
    /// allocation).
    init(decoding r: inout ByteReader, binCount expected: Int = ScoreHistogram.defaultBinCount)
        throws(ProfileDecodingError)
    {
        let bins = try r.readCount(limit: 1 << 20, "bin count")
        guard bins == expected else { throw r.fail(.invalidValue, "\(bins) score bins, expected \(expected)") }
        self.init(binCount: bins)
        for _ in 0..<(try r.readCount(limit: bins, "used bins")) {
            let b = try r.readCount(limit: bins - 1, "bin")
            positives[b] = try r.readVarint()
            negatives[b] = try r.readVarint()
        }
    }

    static let magic: StaticString = "IQSH"
    static let version: UInt8 = 1

    /// "IQSH", version u8 (= 1), then the histogram as above: for a reference's labelled scores
    /// kept outside a window (a model's uploaded reference).
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.write(magic: Self.magic, version: Self.version)
        encode(into: &w)
        return w.bytes
    }

    /// Decodes ``serialized()`` output; throws ``ProfileDecodingError`` on corrupt input.
    public init<C: Collection>(serialized bytes: C) throws(ProfileDecodingError) where C.Element == UInt8 {
        var r = ByteReader(bytes, what: "ScoreHistogram")
        try r.expect(magic: Self.magic, version: Self.version)
        try self.init(decoding: &r)
        try r.finish()
    }
}

/// ```
/// threshold f64, bins varint, threshold bin above varint, non-empty bins count varint,
/// each bin index varint + count varint
/// ```
extension PredictionScores {
    func encode(into w: inout ByteWriter) {
        w.write(threshold)
        w.writeVarint(UInt64(binCount))
        w.writeVarint(thresholdBinAbove)
        let used = (0..<binCount).filter { counts[$0] != 0 }
        w.writeVarint(UInt64(used.count))
        for b in used {
            w.writeVarint(UInt64(b))
            w.writeVarint(counts[b])
        }
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let threshold = try r.readDouble()
        guard threshold.isFinite else { throw r.fail(.invalidValue, "threshold \(threshold)") }
        let bins = try r.readCount(limit: 1 << 20, "bin count")
        guard bins == ScoreHistogram.defaultBinCount else {
            throw r.fail(.invalidValue, "\(bins) score bins, expected \(ScoreHistogram.defaultBinCount)")
        }
        self.init(threshold: threshold, binCount: bins)
        thresholdBinAbove = try r.readVarint()
        for _ in 0..<(try r.readCount(limit: bins, "used bins")) {
            counts[try r.readCount(limit: bins - 1, "bin")] = try r.readVarint()
        }
        guard thresholdBinAbove <= counts[thresholdBin] else {
            throw r.fail(.invalidValue, "more rows above the threshold than in its bin")
        }
    }
}
