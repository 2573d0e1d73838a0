#if canImport(Darwin)
    internal import Darwin
#elseif canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#endif

/// Thin wrappers over the C math library so the rest of the target never imports it directly.
enum Math {
    @inline(__always) static func log(_ x: Double) -> Double { Glibc_or_Darwin_log(x) }
    @inline(__always) static func log2(_ x: Double) -> Double { Glibc_or_Darwin_log2(x) }
    @inline(__always) static func exp(_ x: Double) -> Double { Glibc_or_Darwin_exp(x) }
    @inline(__always) static func lgamma(_ x: Double) -> Double { Glibc_or_Darwin_lgamma(x) }
    @inline(__always) static func pow(_ x: Double, _ y: Double) -> Double { Glibc_or_Darwin_pow(x, y) }
}

@inline(__always) private func Glibc_or_Darwin_log(_ x: Double) -> Double { log(x) }
@inline(__always) private func Glibc_or_Darwin_log2(_ x: Double) -> Double { log2(x) }
@inline(__always) private func Glibc_or_Darwin_exp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func Glibc_or_Darwin_lgamma(_ x: Double) -> Double { lgamma(x) }
@inline(__always) private func Glibc_or_Darwin_pow(_ x: Double, _ y: Double) -> Double { pow(x, y) }
