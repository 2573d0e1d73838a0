/// SplitMix64: a tiny, fast, seedable generator. Its whole state is one `UInt64`, which is
/// serialized with the sketches that use it, so replicas fed the same operations in the same
/// order (or restored from the same bytes) make the same random choices.
public struct SplitMix64: Sendable, Hashable, RandomNumberGenerator {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The SplitMix64 finalizer: a bijective mix that spreads every input bit over the output.
    /// Cluster placement uses it as a stable hash finalizer; its values must never change.
    @inlinable
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
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
    fmix64(fnv1a64(bytes))
}

/// 64-bit FNV-1a over `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3), unmixed.
///
/// Its low bits are weak, so callers finalize it (``fmix64(_:)`` here, `SplitMix64.mix` for
/// cluster placement) before reducing it modulo a count. Values are fixed forever: they are stored
/// in sketches and decide shard placement.
@inlinable
public func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes {
        hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    return hash
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
