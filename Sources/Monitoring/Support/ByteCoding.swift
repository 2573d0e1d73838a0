/// Why a serialized profile could not be decoded.
///
/// Decoding never traps on bad input: every read is bounds-checked and every structural
/// invariant is validated, and a violation throws this error.
public struct ProfileDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The bytes end before the structure does.
        case truncated
        /// The leading magic bytes do not name the expected structure.
        case badMagic
        /// The format version is not one this build can read.
        case unsupportedVersion
        /// A field holds a value outside its valid range.
        case invalidValue
        /// Bytes remain after the structure ends.
        case trailingBytes
    }

    public var code: Code
    /// What was being decoded and what was wrong (never the payload itself).
    public var message: String
    /// Byte offset at which the problem was found.
    public var offset: Int

    public init(code: Code, message: String, offset: Int) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(code.rawValue) at byte \(offset): \(message)" }
}

/// Little-endian writer used by every profile's binary form.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func write(magic: StaticString, version: UInt8) {
        magic.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(version)
    }

    mutating func write(_ v: UInt8) { bytes.append(v) }

    mutating func write(_ v: UInt16) { writeLE(v) }
    mutating func write(_ v: UInt32) { writeLE(v) }
    mutating func write(_ v: UInt64) { writeLE(v) }
    mutating func write(_ v: Double) { writeLE(v.bitPattern) }

    private mutating func writeLE<T: FixedWidthInteger>(_ v: T) {
        var le = v.littleEndian
        withUnsafeBytes(of: &le) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128 varint.
    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func write(string: String) {
        let utf8 = Array(string.utf8)
        writeVarint(UInt64(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func write(raw: [UInt8]) { bytes.append(contentsOf: raw) }
}

/// Bounds-checked little-endian reader; every failure throws ``ProfileDecodingError``.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset: Int = 0
    let what: String

    init<C: Collection>(_ bytes: C, what: String) where C.Element == UInt8 {
        self.bytes = Array(bytes)
        self.what = what
    }

    var remaining: Int { bytes.count - offset }

    func fail(_ code: ProfileDecodingError.Code, _ message: String) -> ProfileDecodingError {
        ProfileDecodingError(code: code, message: "\(what): \(message)", offset: offset)
    }

    mutating func expect(magic: StaticString, version: UInt8) throws(ProfileDecodingError) {
        _ = try expect(magic: magic, versions: version...version)
    }

    /// Reads the header of a structure with several readable format versions; returns the version.
    mutating func expect(magic: StaticString, versions: ClosedRange<UInt8>) throws(ProfileDecodingError) -> UInt8 {
        let m = magic.withUTF8Buffer { Array($0) }
        guard remaining >= m.count + 1 else { throw fail(.truncated, "missing header") }
        guard Array(bytes[offset..<offset + m.count]) == m else { throw fail(.badMagic, "unexpected magic bytes") }
        offset += m.count
        let v = bytes[offset]
        guard versions.contains(v) else {
            let expected =
                versions.count == 1 ? "\(versions.lowerBound)" : "\(versions.lowerBound)...\(versions.upperBound)"
            throw fail(.unsupportedVersion, "version \(v), expected \(expected)")
        }
        offset += 1
        return v
    }

    mutating func readUInt8() throws(ProfileDecodingError) -> UInt8 {
        guard remaining >= 1 else { throw fail(.truncated, "expected 1 byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readUInt16() throws(ProfileDecodingError) -> UInt16 { try readLE(UInt16.self) }
    mutating func readUInt32() throws(ProfileDecodingError) -> UInt32 { try readLE(UInt32.self) }
    mutating func readUInt64() throws(ProfileDecodingError) -> UInt64 { try readLE(UInt64.self) }
    mutating func readDouble() throws(ProfileDecodingError) -> Double { Double(bitPattern: try readLE(UInt64.self)) }

    private mutating func readLE<T: FixedWidthInteger>(_: T.Type) throws(ProfileDecodingError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw fail(.truncated, "expected \(size) bytes") }
        var v: T = 0
        for i in 0..<size { v |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return v
    }

    mutating func readVarint() throws(ProfileDecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try readUInt8()
            guard shift < 64, !(shift == 63 && b > 1) else { throw fail(.invalidValue, "varint overflows 64 bits") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// Reads a varint that must be at most `limit` (guards allocations against corrupt lengths).
    mutating func readCount(limit: Int, _ field: String) throws(ProfileDecodingError) -> Int {
        let v = try readVarint()
        guard v <= UInt64(limit) else { throw fail(.invalidValue, "\(field) \(v) exceeds \(limit)") }
        return Int(v)
    }

    mutating func readString(maxLength: Int = 1 << 20) throws(ProfileDecodingError) -> String {
        let n = try readCount(limit: maxLength, "string length")
        guard n <= remaining else { throw fail(.truncated, "string of \(n) bytes") }
        let s = String(decoding: bytes[offset..<offset + n], as: UTF8.self)
        offset += n
        return s
    }

    mutating func readRaw(_ n: Int) throws(ProfileDecodingError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw fail(.truncated, "expected \(n) bytes") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    func finish() throws(ProfileDecodingError) {
        guard remaining == 0 else { throw fail(.trailingBytes, "\(remaining) unexpected trailing bytes") }
    }
}
