/// A mergeable KLL quantile sketch (Karnin, Lang, Liberty 2016) over finite `Double`s, with
/// lazy compaction as in Apache DataSketches.
///
/// **Error bound.** For any value `x`, the estimated normalized rank `rank(x)` differs from the
/// true fraction of inserted values `≤ x` by at most ε with probability ≥ 99 %, where
/// ε ≈ 2.296 / k^0.9723 (the DataSketches KLL bound). At the default `k = 400` that is
/// **ε ≈ 0.68 %, stated as ≤ 1 %**; quantile queries have the same error in rank space. The bound
/// holds for any input distribution and survives any sequence of merges. The sketch is exact
/// (ε = 0) until more than `k` values have been added.
///
/// **Memory.** All retained items live in one flat buffer sized to the current total level
/// capacity, about 3k + 8·log₂(n/k) doubles: ≈ 10.6 KiB at `k = 400` and n = 10⁹ (see
/// ``memoryFootprint``). The budget for a numeric feature-window is 16 KiB. Until its first
/// compaction a sketch's buffer holds only a power of two of doubles (16 and up) around its
/// values, so the many small sketches of segment windows and small references cost what they hold.
///
/// **Determinism.** Compaction picks odd or even items with a SplitMix64 generator whose seed is
/// part of the state (and of the serialized form), so two replicas that apply the same updates
/// and merges in the same order hold bit-identical sketches.
public struct QuantileSketch: Sendable, Hashable {
    /// Default accuracy parameter (rank error ≤ 1 % at 99 % confidence, ≤ 16 KiB).
    public static let defaultK = 400
    /// Default generator seed; replicas must use the same seed to stay identical.
    public static let defaultSeed: UInt64 = 0x1F2E_3D4C_5B6A_7988
    /// Smallest capacity of a level (DataSketches' `m`).
    static let minLevelCapacity = 8

    /// Accuracy parameter: capacity of the top level.
    public let k: Int
    /// Number of values inserted (sum of weights).
    public internal(set) var count: UInt64 = 0
    /// Smallest value inserted (exact); `+infinity` when empty.
    public internal(set) var min: Double = .infinity
    /// Largest value inserted (exact); `-infinity` when empty.
    public internal(set) var max: Double = -.infinity

    /// Flat item storage. Level `h` (items of weight 2^h) occupies
    /// `items[levelStart[h] ..< levelStart[h + 1]]`; `items[0 ..< levelStart[0]]` is free space.
    /// Level 0 is unsorted, higher levels are sorted ascending.
    var items: ContiguousArray<Double>
    /// `numLevels + 1` boundaries into `items`; the last equals `items.count`.
    var levelStart: ContiguousArray<Int>
    var rng: SplitMix64

    /// Creates an empty sketch.
    /// - Parameters:
    ///   - k: accuracy parameter, 8...65535; rank error ε ≈ 2.296 / k^0.9723 at 99 % confidence.
    ///   - seed: generator seed for compaction choices.
    public init(k: Int = QuantileSketch.defaultK, seed: UInt64 = QuantileSketch.defaultSeed) {
        precondition(k >= 8 && k <= 65535, "QuantileSketch k must be in 8...65535")
        self.k = k
        self.rng = SplitMix64(seed: seed)
        let capacity = Self.singleLevelCapacity(retained: 0, k: k)
        self.items = ContiguousArray(repeating: 0, count: capacity)
        self.levelStart = [capacity, capacity]
    }

    /// Calls `body` with the items, ascending, of a sketch that never compacted (one level, each
    /// item one value).
    func withSortedItemsOfOneLevel(_ body: (UnsafeBufferPointer<Double>) -> Void) {
        precondition(numLevels == 1, "the sketch has compacted")
        var level = Array(items[levelStart[0]..<levelStart[1]])
        level.sort()
        level.withUnsafeBufferPointer(body)
    }

    /// The sketch with its values removed and its k and generator state kept: what
    /// ``init(k:seed:)`` made, for a sketch that never compacted.
    func emptied() -> QuantileSketch {
        var empty = QuantileSketch(k: k)
        empty.rng = rng
        return empty
    }

    /// The buffer size of a one-level sketch holding `retained` items: the smallest power of two
    /// from 16 that holds them, at most k. A sketch with few values (a segment's window, a small
    /// reference) holds a few hundred bytes, not k doubles; the buffer doubles as values arrive,
    /// and the first compaction happens at k items as it always did. A function of the items alone,
    /// so a decoded sketch equals the one that was encoded.
    static func singleLevelCapacity(retained: Int, k: Int) -> Int {
        var capacity = 16
        while capacity < retained { capacity *= 2 }
        return Swift.min(capacity, k)
    }

    /// Number of levels currently allocated.
    public var numLevels: Int { levelStart.count - 1 }
    /// Number of items currently retained.
    public var retainedCount: Int { items.count - levelStart[0] }
    public var isEmpty: Bool { count == 0 }
    /// Bytes used by the sketch's storage (items, level boundaries and fixed fields).
    public var memoryFootprint: Int { items.count * 8 + levelStart.count * 8 + 64 }

    /// Capacity of level `height` when there are `numLevels` levels.
    static func levelCapacity(k: Int, numLevels: Int, height: Int) -> Int {
        let depth = numLevels - height - 1
        var cap = Double(k)
        for _ in 0..<depth { cap *= 2.0 / 3.0 }
        return Swift.max(minLevelCapacity, Int(cap.rounded()))
    }

    static func totalCapacity(k: Int, numLevels: Int) -> Int {
        var total = 0
        for h in 0..<numLevels { total += levelCapacity(k: k, numLevels: numLevels, height: h) }
        return total
    }

    /// Adds one value. NaN and ±infinity are ignored (profiles count them separately).
    @inline(__always)
    public mutating func add(_ x: Double) {
        guard x.isFinite else { return }
        addFinite(x)
    }

    @inline(__always)
    mutating func addFinite(_ x: Double) {
        if levelStart[0] == 0 { compressForUpdate() }
        if x < min { min = x }
        if x > max { max = x }
        let i = levelStart[0] - 1
        levelStart[0] = i
        items[i] = x
        count &+= 1
    }

    /// Adds many values; equivalent to calling ``add(_:)`` for each, but faster.
    public mutating func add(contentsOf values: UnsafeBufferPointer<Double>) {
        var index = 0
        let n = values.count
        while index < n {
            if levelStart[0] == 0 { compressForUpdate() }
            var free = levelStart[0]
            var lo = min, hi = max
            var added: UInt64 = 0
            items.withUnsafeMutableBufferPointer { buf in
                while free > 0 && index < n {
                    let x = values[index]
                    index += 1
                    if x.isFinite {
                        free -= 1
                        buf[free] = x
                        lo = x < lo ? x : lo
                        hi = x > hi ? x : hi
                        added &+= 1
                    }
                }
            }
            levelStart[0] = free
            min = lo
            max = hi
            count &+= added
        }
    }

    /// Adds many values from an array or array slice.
    public mutating func add<C: Collection>(contentsOf values: C) where C.Element == Double {
        let done: Void? = values.withContiguousStorageIfAvailable { add(contentsOf: $0) }
        if done == nil { for x in values { add(x) } }
    }

    /// Adds finite values given in ascending order: the same sketch as ``add(contentsOf:)`` up to
    /// the order of the level-0 items, written as ascending runs so that compacting level 0
    /// merges them instead of sorting (``sortFiniteRuns(_:)``).
    public mutating func add(sortedFinite values: UnsafeBufferPointer<Double>) {
        let n = values.count
        guard n > 0 else { return }
        assert(isAscendingFinite(values), "add(sortedFinite:) takes finite values in ascending order")
        if values[0] < min { min = values[0] }
        if values[n - 1] > max { max = values[n - 1] }
        count &+= UInt64(n)
        var index = 0
        while index < n {
            if levelStart[0] == 0 { compressForUpdate() }
            let free = levelStart[0]
            let c = Swift.min(free, n - index)
            items.withUnsafeMutableBufferPointer { buf in
                for j in 0..<c { buf[free - c + j] = values[index + j] }
            }
            levelStart[0] = free - c
            index += c
        }
    }

    /// Frees space in the buffer: compacts the lowest level that is at or over capacity.

    mutating func compressForUpdate() {
        if numLevels == 1 && items.count < k {
            growFront(by: Swift.min(items.count * 2, k) - items.count)
            return
        }
        let levels = numLevels
        var h = 0
        while h < levels {
            let size = levelStart[h + 1] - levelStart[h]
            if size >= Self.levelCapacity(k: k, numLevels: levels, height: h) { break }
            h += 1
        }
        precondition(h < levels, "KLL invariant: a full buffer has a level at capacity")
        if h == levels - 1 { addLevel() }
        compactLevel(h)
    }

    /// Adds an empty top level and grows the buffer by the capacity gained (at the front).
    mutating func addLevel() {
        let delta = Self.totalCapacity(k: k, numLevels: numLevels + 1) - items.count
        precondition(delta > 0)
        growFront(by: delta)
        levelStart.append(items.count)
    }

    /// Grows the buffer by `delta` free slots at the front, moving every level up.
    private mutating func growFront(by delta: Int) {
        let oldTotal = items.count
        var grown = ContiguousArray<Double>(repeating: 0, count: oldTotal + delta)
        let start = levelStart[0]
        grown.withUnsafeMutableBufferPointer { dst in
            items.withUnsafeBufferPointer { src in
                for i in start..<oldTotal { dst[i + delta] = src[i] }
            }
        }
        items = grown
        for j in levelStart.indices { levelStart[j] += delta }
    }

    /// Halves level `h` into level `h + 1` (which must exist): sorts it (level 0), keeps one item
    /// back when its size is odd, promotes every other item starting at a random offset, and
    /// merges the promoted items into the sorted level above.
    mutating func compactLevel(_ h: Int) {
        let start = levelStart[h], end = levelStart[h + 1], nextEnd = levelStart[h + 2]
        let size = end - start
        let coin = Int(rng.next() >> 63)
        let low = levelStart[0]
        let (newStart, newUpperStart) = items.withUnsafeMutableBufferPointer { buf -> (Int, Int) in
            if h == 0 { sortFiniteRuns(UnsafeMutableBufferPointer(rebasing: buf[start..<end])) }
            let odd = size & 1 == 1
            let popStart = odd ? start + 1 : start
            let half = (end - popStart) / 2
            let upperCount = nextEnd - end
            let mergedCount = half + upperCount
            let newUpperStart = nextEnd - mergedCount
            return withUnsafeTemporaryAllocation(of: Double.self, capacity: mergedCount) { tmp -> (Int, Int) in
                mergeAscending(buf, popStart + coin, popStart + 2 * half, step: 2, end, nextEnd, into: tmp, at: 0)
                let kept = odd ? buf[start] : 0
                for i in 0..<mergedCount { buf[newUpperStart + i] = tmp[i] }
                let newStart = newUpperStart - (odd ? 1 : 0)
                if odd { buf[newStart] = kept }
                // Shift the levels below h up to close the gap.
                let gap = newStart - start
                if gap > 0 {
                    var i = start - 1
                    while i >= low {
                        buf[i + gap] = buf[i]
                        i -= 1
                    }
                }
                return (newStart, newUpperStart)
            }
        }
        let gap = newStart - start
        for j in 0..<h { levelStart[j] += gap }
        levelStart[h] = newStart
        levelStart[h + 1] = newUpperStart
    }
}

/// In-place ascending sort of finite doubles: quicksort with median-of-three pivots and
/// insertion sort below 24 elements (about twice as fast as the standard library's stable sort
/// on the sketch's level-0 buffers; stability is irrelevant for plain values).
func sortDoubles(_ a: UnsafeMutableBufferPointer<Double>) {
    var lo = 0, hi = a.count - 1
    // Recurse into the smaller side, loop on the larger: O(log n) stack.
    while hi - lo >= 24 {
        let mid = lo + (hi - lo) / 2
        if a[mid] < a[lo] { a.swapAt(mid, lo) }
        if a[hi] < a[lo] { a.swapAt(hi, lo) }
        if a[hi] < a[mid] { a.swapAt(hi, mid) }
        let pivot = a[mid]
        var i = lo, j = hi
        while i <= j {
            while a[i] < pivot { i += 1 }
            while a[j] > pivot { j -= 1 }
            if i <= j {
                a.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if j - lo < hi - i {
            if lo < j { sortDoubles(UnsafeMutableBufferPointer(rebasing: a[lo...j])) }
            lo = i
        } else {
            if i < hi { sortDoubles(UnsafeMutableBufferPointer(rebasing: a[i...hi])) }
            hi = j
        }
    }
    if hi <= lo { return }
    for k in (lo + 1)...hi {
        let x = a[k]
        var m = k - 1
        while m >= lo && a[m] > x {
            a[m + 1] = a[m]
            m -= 1
        }
        a[m + 1] = x
    }
}

/// Whether `values` are finite and ascending (the precondition of the sketches' sorted-run adds,
/// checked in debug builds).
func isAscendingFinite(_ values: UnsafeBufferPointer<Double>) -> Bool {
    values.allSatisfy(\.isFinite) && zip(values, values.dropFirst()).allSatisfy { $0 <= $1 }
}
