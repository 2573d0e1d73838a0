/// The places where a `Request` is framed without encoding it whole with SwiftProtobuf, so
/// that a large, already-serialized batch is not decoded or encoded again. Both rely on the
/// protobuf wire format only as the specification guarantees it: fields are tag, then value
/// (varint or length-prefixed bytes), and when a scalar field appears more than once in a
/// message, the last value wins. No other code writes protobuf bytes by hand.
extension Infranaut_V1_Request {
    /// The serialized `Request{version: 1, ingest: IngestRequest{idempotency_key: key, batch}}`,
    /// with `batchBytes` (a serialized `TelemetryBatch`) copied in as they are.
    ///
    /// The bytes are those SwiftProtobuf writes for the same message, in the same field order.
    /// - Parameters:
    ///   - key: The idempotency key.
    ///   - batchBytes: A serialized `Infranaut_V1_TelemetryBatch`; not checked here.
    public static func encodedIngest(key: String, batchBytes: [UInt8]) -> [UInt8] {
        let keyBytes = Array(key.utf8)
        var ingest: [UInt8] = []
        ingest.reserveCapacity(keyBytes.count + batchBytes.count + 12)
        appendLengthDelimited(field: 1, keyBytes, to: &ingest)  // IngestRequest.idempotency_key
        appendLengthDelimited(field: 2, batchBytes, to: &ingest)  // IngestRequest.batch
        var request: [UInt8] = []
        request.reserveCapacity(ingest.count + 8)
        appendTag(field: 1, wireType: varintWireType, to: &request)  // Request.version = 1
        appendVarint(1, to: &request)
        appendLengthDelimited(field: 10, ingest, to: &request)  // Request.ingest
        return request
    }

    /// `bytes`, a serialized `Request`, with `hops` appended: decoded, it is the same request with
    /// `hops` set to that value whatever it was before (the last value of a scalar field wins).
    ///
    /// A node forwards a client's request toward the shard's leader this way, so the batch inside is
    /// neither decoded again nor copied into a new message.
    public static func markingForwarded(_ bytes: [UInt8], hops: UInt32 = 1) -> [UInt8] {
        var marked = bytes
        appendTag(field: 2, wireType: varintWireType, to: &marked)  // Request.hops
        appendVarint(UInt64(hops), to: &marked)
        return marked
    }

    /// `bytes`, a serialized `Request`, with `timeout_ms` appended (so it replaces any earlier
    /// value): how a node tells the next one how long it waits, without encoding the request again.
    public static func withTimeout(_ bytes: [UInt8], milliseconds: UInt32) -> [UInt8] {
        var marked = bytes
        appendTag(field: 3, wireType: varintWireType, to: &marked)  // Request.timeout_ms
        appendVarint(UInt64(milliseconds), to: &marked)
        return marked
    }
}

private let varintWireType: UInt64 = 0
private let lengthDelimitedWireType: UInt64 = 2

private func appendTag(field: UInt64, wireType: UInt64, to bytes: inout [UInt8]) {
    appendVarint(field << 3 | wireType, to: &bytes)
}

private func appendLengthDelimited(field: UInt64, _ value: [UInt8], to bytes: inout [UInt8]) {
    appendTag(field: field, wireType: lengthDelimitedWireType, to: &bytes)
    appendVarint(UInt64(value.count), to: &bytes)
    bytes += value
}

private func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
    var rest = value
    while rest >= 0x80 {
        bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
        rest >>= 7
    }
    bytes.append(UInt8(rest))
}
