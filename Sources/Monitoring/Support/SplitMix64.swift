/// SplitMix64: a tiny, fast, seedable generator. Its whole state is one `UInt64`, which is
/// serialized with the sketches that use it, so replicas fed the same operations in the same
/// order (or restored from the same bytes) make the same random choices.
public struct SplitMix64: Sendable, Hashable, RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    @inline(__always)
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }
}

/// A stable 64-bit hash of a string's UTF-8 bytes (FNV-1a followed by the MurmurHash3 finalizer).
///
/// Swift's `Hasher` is seeded per process, so it cannot be used for anything that is stored or
/// compared across processes (HyperLogLog registers, duplicate-id sets).
@inlinable
public func stableHash64(_ string: String) -> UInt64 {
    var s = string
    return s.withUTF8 { stableHash64(bytes: $0) }
}

/// A stable 64-bit hash of raw bytes (FNV-1a followed by the MurmurHash3 finalizer).
@inlinable
public func stableHash64(bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in bytes {
        h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3
    }
    return fmix64(h)
}

/// MurmurHash3's 64-bit finalizer: a bijective mix with full avalanche.
@inlinable
public func fmix64(_ value: UInt64) -> UInt64 {
    var k = value
    k ^= k >> 33
    k &*= 0xFF51_AFD7_ED55_8CCD
    k ^= k >> 33
    k &*= 0xC4CE_B9FE_1A85_EC53
    k ^= k >> 33
    return k
}
