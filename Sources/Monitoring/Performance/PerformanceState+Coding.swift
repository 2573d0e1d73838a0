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
            for h in c.histograms {
                w.writeVarint(UInt64(h.binCount))
                let used = (0..<h.binCount).filter { h.positives[$0] != 0 || h.negatives[$0] != 0 }
                w.writeVarint(UInt64(used.count))
                for b in used {
                    w.writeVarint(UInt64(b))
                    w.writeVarint(h.positives[b])
                    w.writeVarint(h.negatives[b])
                }
            }
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
                let bins = try r.readCount(limit: 1 << 20, "bin count")
                var h = ScoreHistogram(binCount: max(1, bins))
                for _ in 0..<(try r.readCount(limit: bins, "used bins")) {
                    let b = try r.readCount(limit: bins - 1, "bin")
                    h.positives[b] = try r.readVarint()
                    h.negatives[b] = try r.readVarint()
                }
                classification!.histograms[i] = h
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
