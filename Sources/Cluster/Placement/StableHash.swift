import Monitoring

/// Hash functions whose values are fixed forever: the same on every process, platform and
/// release. (Swift's `Hasher` is seeded per process and must never be used for placement.)
public enum StableHash {
    /// 64-bit FNV-1a over `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
    public static func fnv1a64<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        Monitoring.fnv1a64(bytes)
    }

    /// 64-bit FNV-1a over the UTF-8 bytes of `string`.
    public static func fnv1a64(_ string: String) -> UInt64 {
        fnv1a64(string.utf8)
    }

    /// The SplitMix64 finalizer: a bijective mix that spreads every input bit over the output.
    /// FNV-1a's low bits are weak, so placement always mixes before reducing modulo a count.
    public static func mix(_ value: UInt64) -> UInt64 {
        SplitMix64.mix(value)
    }

    /// Rendezvous (highest random weight) score of `node` for `shard`; the node with the highest
    /// score ranks first. Depends only on the two values, so adding or removing other nodes never
    /// changes the relative order of the remaining ones.
    public static func rendezvousScore(nodeHash: UInt64, shard: Int) -> UInt64 {
        mix(nodeHash ^ mix(UInt64(truncatingIfNeeded: shard) &+ 0x9E37_79B9_7F4A_7C15))
    }
}

/// One of the cluster's fixed number of shards, `0 ..< shardCount`.
public struct ShardID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The shard number.
    public let rawValue: Int

    /// Wraps a shard number.
    public init(_ rawValue: Int) {
        self.rawValue = rawValue
    }

    /// The shard a model belongs to: `mix(fnv1a64(utf8(modelID))) mod shardCount`.
    public init(model modelID: String, shardCount: Int) {
        precondition(shardCount > 0, "shardCount must be positive")
        self.rawValue = Int(StableHash.mix(StableHash.fnv1a64(modelID)) % UInt64(shardCount))
    }

    public var description: String { "shard-\(rawValue)" }

    public static func < (lhs: ShardID, rhs: ShardID) -> Bool {
        lhs.rawValue < rhs.rawValue
    }
}
