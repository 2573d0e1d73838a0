/// Big-endian key building: unsigned integers encoded big-endian sort numerically under RocksDB's
/// default bytewise comparator, so `(shard, sequence)` keys iterate in sequence order.
public struct KeyBuilder: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 16) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func append(_ value: UInt8) {
        bytes.append(value)
    }

    public mutating func append<I: FixedWidthInteger & UnsignedInteger>(bigEndian value: I) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// A copy with `value` appended big-endian (for building keys in one expression).
    public func appending<I: FixedWidthInteger & UnsignedInteger>(bigEndian value: I) -> KeyBuilder {
        var copy = self
        copy.append(bigEndian: value)
        return copy
    }

    /// A copy with the length-prefixed string appended.
    public func appending(string: String) -> KeyBuilder {
        var copy = self
        copy.append(string: string)
        return copy
    }

    /// Appends a length-prefixed (UInt16, big-endian) UTF-8 string, so a string is never a prefix
    /// of another one's encoding followed by more fields.
    public mutating func append(string: String) {
        let utf8 = Array(string.utf8)
        append(bigEndian: UInt16(clamping: utf8.count))
        bytes.append(contentsOf: utf8.prefix(Int(UInt16.max)))
    }

    public mutating func append(bytes other: [UInt8]) {
        bytes.append(contentsOf: other)
    }
}

/// Reads big-endian fields back from a key.
public struct KeyReader: Sendable {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    public mutating func readUInt8() throws(StorageError) -> UInt8 {
        guard remaining >= 1 else { throw truncated("UInt8") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func read<I: FixedWidthInteger & UnsignedInteger>(_: I.Type) throws(StorageError) -> I {
        let size = MemoryLayout<I>.size
        guard remaining >= size else { throw truncated("\(I.self)") }
        var value: I = 0
        for i in 0..<size { value = (value << 8) | I(bytes[offset + i]) }
        offset += size
        return value
    }

    public mutating func readString() throws(StorageError) -> String {
        let length = Int(try read(UInt16.self))
        guard remaining >= length else { throw truncated("string of \(length) bytes") }
        defer { offset += length }
        return String(decoding: bytes[offset..<offset + length], as: UTF8.self)
    }

    /// Throws unless every byte was read (a key with bytes left over has another layout).
    public func expectEnd() throws(StorageError) {
        guard remaining == 0 else {
            throw StorageError(
                .corruption, operation: "decode key",
                message: "key of \(bytes.count) bytes has \(remaining) bytes left after offset \(offset)")
        }
    }

    private func truncated(_ what: String) -> StorageError {
        StorageError(
            .corruption, operation: "decode key",
            message: "key of \(bytes.count) bytes ends before \(what) at offset \(offset)")
    }
}
