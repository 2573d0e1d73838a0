/// Limits applied to every ingest request before it reaches a shard.
public struct IngestLimits: Sendable {
    /// Rows in one batch. Default 1,000,000.
    public var maxRows = 1_000_000
    /// Rows in one batch of labels. Default 20,000: each label may cost its shard up to three
    /// RocksDB reads while it applies (on every replica, in the actor that also runs the shard's
    /// consensus), so a batch of labels holds the shard far longer per row than telemetry.
    public var maxLabelRows = 20_000
    /// Columns in one batch. Default 4,096.
    public var maxColumns = 4_096
    /// Bytes of a model id, column name or prediction id. Default 256.
    public var maxNameBytes = 256
    /// Bytes of an idempotency key. Default 128.
    public var maxIdempotencyKeyBytes = 128
    /// Bytes of one string value. Default 64 KiB.
    public var maxStringValueBytes = 64 << 10

    public init() {}
}

extension Infranaut_V1_IngestRequest {
    /// Checks the request's structure; throws the first problem found, naming the field.
    ///
    /// Values of a wrong *type* inside a well-formed column are not an error here: they are counted
    /// as type mismatches when the batch meets the model's established schema.
    public func validate(_ limits: IngestLimits = IngestLimits()) throws(WireError) {
        guard !idempotencyKey.isEmpty else {
            throw .invalid("idempotency_key is required (1 to \(limits.maxIdempotencyKeyBytes) bytes)")
        }
        guard idempotencyKey.utf8.count <= limits.maxIdempotencyKeyBytes else {
            throw .invalid(
                "idempotency_key is \(idempotencyKey.utf8.count) bytes; the limit is \(limits.maxIdempotencyKeyBytes)")
        }
        guard hasBatch else { throw .invalid("batch is missing") }
        try batch.validate(limits)
    }
}

extension Infranaut_V1_TelemetryBatch {
    /// 9999-12-31T23:59:59.999Z.
    public static let maxEventTimeUnixMs: Int64 = 253_402_300_799_999

    public func validate(_ limits: IngestLimits = IngestLimits()) throws(WireError) {
        guard !modelID.isEmpty else { throw .invalid("batch.model_id is empty") }
        guard modelID.utf8.count <= limits.maxNameBytes else {
            throw .invalid("batch.model_id is \(modelID.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
        }
        let rows = Int(rowCount)
        guard rows > 0 else { throw .invalid("batch.row_count is 0; a batch carries at least one row") }
        guard rows <= limits.maxRows else {
            throw WireError(.tooLarge, "batch.row_count is \(rows); the limit is \(limits.maxRows) rows per batch")
        }
        guard !columns.isEmpty else { throw .invalid("batch has no columns") }
        guard columns.count <= limits.maxColumns else {
            throw WireError(.tooLarge, "batch has \(columns.count) columns; the limit is \(limits.maxColumns)")
        }
        guard predictionIds.isEmpty || predictionIds.count == rows else {
            throw .invalid("batch.prediction_ids has \(predictionIds.count) entries for \(rows) rows")
        }
        // Event times are ms since 1970 up to the year 9999: arithmetic on them (window starts,
        // spans) then cannot overflow, and a hostile time cannot stop the shard that applies it.
        if let bad = eventTimeUnixMs.firstIndex(where: { $0 < 0 || $0 > Self.maxEventTimeUnixMs }) {
            throw .invalid(
                "batch.event_time_unix_ms[\(bad)] is \(eventTimeUnixMs[bad]); event times are ms since 1970, from 0 to \(Self.maxEventTimeUnixMs) (year 9999)"
            )
        }
        guard version.utf8.count <= 128 else {
            throw .invalid("batch.version is \(version.utf8.count) bytes; the limit is 128")
        }
        guard eventTimeUnixMs.isEmpty || eventTimeUnixMs.count == rows else {
            throw .invalid("batch.event_time_unix_ms has \(eventTimeUnixMs.count) entries for \(rows) rows")
        }
        for (index, id) in predictionIds.enumerated() where id.utf8.count > limits.maxNameBytes {
            throw .invalid(
                "batch.prediction_ids[\(index)] is \(id.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
        }
        var names = Set<String>()
        for (index, column) in columns.enumerated() {
            let place = "batch.columns[\(index)]"
            guard !column.name.isEmpty else { throw .invalid("\(place).name is empty") }
            guard column.name.utf8.count <= limits.maxNameBytes else {
                throw .invalid("\(place).name is \(column.name.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
            }
            guard names.insert(column.name).inserted else {
                throw .invalid("\(place): column \"\(column.name)\" appears more than once")
            }
            let where_ = "\(place) (\"\(column.name)\")"
            switch column.values {
            case .none:
                throw .invalid("\(where_) has no values of a known type (doubles, strings or bools)")
            case .doubles(let values):
                try checkLength(values.values.count, rows, where_)
            case .strings(let values):
                try checkLength(values.values.count, rows, where_)
                try checkMissing(values.missingRows, rows, where_)
                for (row, value) in values.values.enumerated() where value.utf8.count > limits.maxStringValueBytes {
                    throw .invalid(
                        "\(where_) row \(row): value is \(value.utf8.count) bytes; the limit is \(limits.maxStringValueBytes)"
                    )
                }
            case .bools(let values):
                try checkLength(values.values.count, rows, where_)
                try checkMissing(values.missingRows, rows, where_)
            }
        }
        if !predictionColumn.isEmpty && !names.contains(predictionColumn) {
            throw .invalid("batch.prediction_column names \"\(predictionColumn)\", which is not a column of the batch")
        }
        if !labelColumn.isEmpty && !names.contains(labelColumn) {
            throw .invalid("batch.label_column names \"\(labelColumn)\", which is not a column of the batch")
        }
        if labels { try validateLabels(limits) }
    }

    /// A batch of labels carries ids and one label column, nothing else.
    private func validateLabels(_ limits: IngestLimits) throws(WireError) {
        guard rowCount <= limits.maxLabelRows else {
            throw WireError(
                .tooLarge,
                "batch.labels is set and batch.row_count is \(rowCount); the limit is \(limits.maxLabelRows) labels per batch"
            )
        }
        guard !reference else {
            throw .invalid("batch.labels and batch.reference are both set; a batch is one or the other")
        }
        guard !predictionIds.isEmpty else {
            throw .invalid(
                "batch.labels is set but batch.prediction_ids is empty: each label needs the id of its prediction")
        }
        guard !labelColumn.isEmpty else {
            throw .invalid("batch.labels is set but batch.label_column is empty: name the column that holds the labels")
        }
        guard predictionColumn.isEmpty, columns.count == 1 else {
            throw .invalid(
                "batch.labels is set, so the batch carries only the label column \"\(labelColumn)\"; it has \(columns.map(\.name))"
            )
        }
        if let empty = predictionIds.firstIndex(of: "") {
            throw .invalid("batch.prediction_ids[\(empty)] is empty: each label needs the id of its prediction")
        }
    }

    private func checkLength(_ count: Int, _ rows: Int, _ place: String) throws(WireError) {
        guard count == rows else {
            throw .invalid(
                "\(place) has \(count) values but the batch has \(rows) rows (columns must have equal length)")
        }
    }

    private func checkMissing(_ missing: [UInt32], _ rows: Int, _ place: String) throws(WireError) {
        for row in missing where Int(row) >= rows {
            throw .invalid("\(place).missing_rows lists row \(row), beyond the batch's \(rows) rows")
        }
    }
}

extension Infranaut_V1_ReceiptsRequest {
    /// Keys one receipts request may ask about.
    public static let maxKeys = 10_000

    /// Checks the request's structure; throws the first problem found, naming the field.
    public func validate(_ limits: IngestLimits = IngestLimits()) throws(WireError) {
        guard !modelID.isEmpty else { throw .invalid("receipts.model_id is empty") }
        guard modelID.utf8.count <= limits.maxNameBytes else {
            throw .invalid("receipts.model_id is \(modelID.utf8.count) bytes; the limit is \(limits.maxNameBytes)")
        }
        guard !idempotencyKeys.isEmpty else {
            throw .invalid("receipts.idempotency_keys is empty; ask about 1 to \(Self.maxKeys) keys")
        }
        guard idempotencyKeys.count <= Self.maxKeys else {
            throw WireError(
                .tooLarge, "receipts asks about \(idempotencyKeys.count) keys; the limit is \(Self.maxKeys) per request"
            )
        }
        for (index, key) in idempotencyKeys.enumerated()
        where key.isEmpty || key.utf8.count > limits.maxIdempotencyKeyBytes {
            throw .invalid(
                "receipts.idempotency_keys[\(index)] is \(key.utf8.count) bytes; keys are 1 to \(limits.maxIdempotencyKeyBytes) bytes"
            )
        }
    }
}

extension Infranaut_V1_ClusterEvent {
    /// Bytes of an event payload. 64 KiB.
    public static let maxPayloadBytes = 64 << 10

    /// Checks the event's structure; throws the first problem found, naming the field.
    public func validate() throws(WireError) {
        guard !id.isEmpty, id.utf8.count <= 128 else {
            throw .invalid("event.id is \(id.utf8.count) bytes; it must be 1 to 128")
        }
        guard !kind.isEmpty, kind.utf8.count <= 64 else {
            throw .invalid("event.kind is \(kind.utf8.count) bytes; it must be 1 to 64")
        }
        guard payload.count <= Self.maxPayloadBytes else {
            throw WireError(.tooLarge, "event.payload is \(payload.count) bytes; the limit is \(Self.maxPayloadBytes)")
        }
    }
}
