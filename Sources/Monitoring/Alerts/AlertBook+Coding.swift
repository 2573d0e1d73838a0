extension AlertBook {
    private static let magic: StaticString = "IFAB"
    /// 2 adds the outbox of undelivered changes.
    private static let formatVersion: UInt8 = 2

    /// The book's binary form, kept in the model's checkpoint.
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + alerts.count * 96)
        w.write(magic: Self.magic, version: Self.formatVersion)
        let sorted = alerts.values.sorted { $0.fingerprint < $1.fingerprint }
        w.writeVarint(UInt64(sorted.count))
        for alert in sorted { Self.write(alert, to: &w) }
        w.writeVarint(UInt64(resolved.count))
        for alert in resolved { Self.write(alert, to: &w) }
        w.writeVarint(nextChange)
        w.writeVarint(droppedChanges)
        w.writeVarint(UInt64(outbox.count))
        for change in outbox {
            w.writeVarint(change.number)
            Self.write(change.alert, to: &w)
        }
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProfileDecodingError) {
        var r = ByteReader(bytes, what: "alert book")
        let version = try r.expect(magic: Self.magic, versions: 1...Self.formatVersion)
        let count = try r.readCount(limit: Self.maxAlerts * 2, "alerts")
        for _ in 0..<count {
            let alert = try Self.read(&r)
            alerts[alert.fingerprint] = alert
        }
        let resolvedCount = try r.readCount(limit: Self.maxResolved, "resolved alerts")
        for _ in 0..<resolvedCount { resolved.append(try Self.read(&r)) }
        if version >= 2 {
            nextChange = try r.readVarint()
            droppedChanges = try r.readVarint()
            let changes = try r.readCount(limit: Self.maxOutbox, "undelivered alert changes")
            for _ in 0..<changes {
                let number = try r.readVarint()
                outbox.append(Change(number: number, alert: try Self.read(&r)))
            }
        }
        try r.finish()
    }

    private static func write(_ a: Alert, to w: inout ByteWriter) {
        w.write(string: a.fingerprint)
        w.write(string: a.rule)
        w.write(string: a.series.version)
        if let segment = a.series.segment {
            switch segment.value {
            case .value(let v):
                w.write(UInt8(1))
                w.write(string: v)
            case .missing: w.write(UInt8(2))
            case .other: w.write(UInt8(3))
            }
            w.write(string: segment.column)
        } else {
            w.write(UInt8(0))
        }
        w.write(a.state.rawValue)
        w.write(a.severity.rawValue)
        w.writeVarint(UInt64(a.consecutive))
        w.write(UInt64(bitPattern: a.sinceMs))
        w.write(UInt64(bitPattern: a.windowStartMs))
        w.write(UInt64(bitPattern: a.windowEndMs))
        w.write(a.value)
        w.write(string: a.feature)
        w.write(UInt64(bitPattern: a.changedMs))
        w.writeVarint(a.sequence)
        w.write(UInt8(a.fired ? 1 : 0))
        w.writeVarint(UInt64(a.history.count))
        for x in a.history { w.write(x) }
    }

    private static func read(_ r: inout ByteReader) throws(ProfileDecodingError) -> Alert {
        let fingerprint = try r.readString(maxLength: 64)
        let rule = try r.readString(maxLength: 256)
        let version = try r.readString(maxLength: 1024)
        var segment: Segment?
        let kind = try r.readUInt8()
        switch kind {
        case 0: break
        case 1:
            let value = try r.readString(maxLength: 1 << 16)
            segment = Segment(column: try r.readString(maxLength: 1 << 16), value: .value(value))
        case 2: segment = Segment(column: try r.readString(maxLength: 1 << 16), value: .missing)
        case 3: segment = Segment(column: try r.readString(maxLength: 1 << 16), value: .other)
        default: throw r.fail(.invalidValue, "segment kind \(kind)")
        }
        guard let state = State(rawValue: try r.readUInt8()) else { throw r.fail(.invalidValue, "alert state") }
        guard let severity = AlertSeverity(rawValue: try r.readUInt8()) else {
            throw r.fail(.invalidValue, "alert severity")
        }
        let consecutive = Int(clamping: try r.readVarint())
        let since = Int64(bitPattern: try r.readUInt64())
        let start = Int64(bitPattern: try r.readUInt64())
        let end = Int64(bitPattern: try r.readUInt64())
        let value = try r.readDouble()
        let feature = try r.readString(maxLength: 1 << 16)
        let changed = Int64(bitPattern: try r.readUInt64())
        let sequence = try r.readVarint()
        let fired = try r.readUInt8() == 1
        let historyCount = try r.readCount(limit: AlertCondition.keptHistory, "alert history")
        var history: [Double] = []
        for _ in 0..<historyCount { history.append(try r.readDouble()) }
        return Alert(
            fingerprint: fingerprint, rule: rule, series: SeriesKey(version: version, segment: segment), state: state,
            severity: severity, consecutive: consecutive, sinceMs: since, windowStartMs: start, windowEndMs: end,
            value: value, feature: feature, changedMs: changed, sequence: sequence, fired: fired, history: history)
    }
}
