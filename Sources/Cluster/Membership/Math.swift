// Small numeric helpers, so the protocol needs nothing beyond the standard library
// (which has no logarithm without Foundation or Glibc).

/// Natural logarithm of a positive finite `x`, accurate to about 1e-15 relative error.
///
/// Splits `x = m × 2^e` with `m` in [1, 2) and sums `ln(m) = 2 atanh((m − 1) / (m + 1))`.
func naturalLog(_ x: Double) -> Double {
    precondition(x > 0 && x.isFinite, "naturalLog needs a positive finite value")
    let exponent = Double(x.exponent)
    let m = x.significand
    let t = (m - 1) / (m + 1)
    let t2 = t * t
    var term = t
    var sum = 0.0
    var k = 1.0
    while true {
        let next = sum + term / k
        if next == sum { break }
        sum = next
        term *= t2
        k += 2
    }
    return 2 * sum + exponent * 0.693_147_180_559_945_3
}

/// Base-10 logarithm (named so as not to shadow Glibc's `log10` for other files of the module) of a positive finite `x`.
func decimalLog(_ x: Double) -> Double {
    naturalLog(x) / 2.302_585_092_994_045_7
}
