/// A HyperLogLog distinct-count estimator (Flajolet et al. 2007, 64-bit hash, linear counting
/// for small cardinalities) over strings hashed with ``stableHash64(_:)``.
///
/// **Error bound.** Relative standard error 1.04/√(2^precision): **1.6 % at the default
/// precision 12** (4,096 one-byte registers, 4 KiB). Below about 2.5·2^precision distinct values
/// the linear-counting branch is used, which is far more accurate (near exact for tens of items).
/// Merging (register-wise max) is lossless: merge(A, B) equals the sketch of A ∪ B.
public struct HyperLogLog: Sendable, Hashable {
    public static let defaultPrecision = 12
    /// log₂ of the register count, 4...16.
    public let precision: Int
    var registers: [UInt8]

    public init(precision: Int = HyperLogLog.defaultPrecision) {
        precondition((4...16).contains(precision), "HyperLogLog precision must be in 4...16")
        self.precision = precision
        registers = [UInt8](repeating: 0, count: 1 << precision)
    }

    public mutating func add(_ item: String) { add(hash: stableHash64(item)) }

    /// Adds a precomputed 64-bit hash (must be well mixed, e.g. ``stableHash64(_:)``).
    public mutating func add(hash: UInt64) {
        let index = Int(hash >> UInt64(64 - precision))
        let rest = (hash << UInt64(precision)) | (UInt64(1) << UInt64(precision - 1))
        let rho = UInt8(rest.leadingZeroBitCount + 1)
        if rho > registers[index] { registers[index] = rho }
    }

    /// Estimated number of distinct items added.
    public var estimate: Double {
        let m = Double(registers.count)
        var sum = 0.0
        var zeros = 0
        for r in registers {
            sum += Double(sign: .plus, exponent: -Int(r), significand: 1)
            if r == 0 { zeros += 1 }
        }
        let alpha = 0.7213 / (1 + 1.079 / m)
        let raw = alpha * m * m / sum
        if raw <= 2.5 * m && zeros > 0 { return m * Math.log(m / Double(zeros)) }
        return raw
    }

    /// Register-wise maximum; both sketches must have the same precision.
    public mutating func merge(_ other: HyperLogLog) {
        precondition(other.precision == precision, "cannot merge HyperLogLog sketches of different precision")
        for i in registers.indices where other.registers[i] > registers[i] { registers[i] = other.registers[i] }
    }

    /// Layout: precision u8, mode u8 (0 = sparse: varint n then n × (index u16, value u8);
    /// 1 = dense: 2^precision register bytes).
    func encode(into w: inout ByteWriter) {
        w.write(UInt8(precision))
        let nonzero = registers.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
        if nonzero * 3 < registers.count {
            w.write(UInt8(0))
            w.writeVarint(UInt64(nonzero))
            for (i, r) in registers.enumerated() where r != 0 {
                w.write(UInt16(i))
                w.write(r)
            }
        } else {
            w.write(UInt8(1))
            w.write(raw: registers)
        }
    }

    init(decoding r: inout ByteReader) throws(ProfileDecodingError) {
        let p = Int(try r.readUInt8())
        guard (4...16).contains(p) else { throw r.fail(.invalidValue, "precision \(p)") }
        self.init(precision: p)
        let maxRank = UInt8(64 - p + 1)
        switch try r.readUInt8() {
        case 0:
            let n = try r.readCount(limit: registers.count, "sparse register count")
            var previous = -1
            for _ in 0..<n {
                let i = Int(try r.readUInt16())
                let v = try r.readUInt8()
                guard i > previous, i < registers.count else { throw r.fail(.invalidValue, "register index \(i)") }
                guard v > 0, v <= maxRank else { throw r.fail(.invalidValue, "register value \(v)") }
                registers[i] = v
                previous = i
            }
        case 1:
            let raw = try r.readRaw(registers.count)
            guard raw.allSatisfy({ $0 <= maxRank }) else { throw r.fail(.invalidValue, "register value too large") }
            registers = Array(raw)
        case let mode:
            throw r.fail(.invalidValue, "register mode \(mode)")
        }
    }
}
