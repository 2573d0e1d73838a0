/// Durations as specs write them: a whole number and a unit, `ms`, `s`, `m`, `h`, `d` or `w`
/// (`90d`, `10m`, `1h`), or `0`.
public enum SpecDuration {
    static let units: [(suffix: String, ms: UInt64)] = [
        ("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
    ]

    /// The milliseconds `text` stands for, or nil when it is not a duration.
    public static func milliseconds(_ text: String) -> UInt64? {
        if text == "0" { return 0 }
        // Longest suffix first, so "ms" is not read as "m".
        for (suffix, unit) in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where text.hasSuffix(suffix) {
            let digits = text.dropLast(suffix.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), let value = UInt64(digits) else { return nil }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit)
            return overflow ? nil : product
        }
        return nil
    }

    /// The shortest exact text for `ms` (`3600000` → `1h`).
    public static func text(_ ms: UInt64) -> String {
        guard ms > 0 else { return "0" }
        for (suffix, unit) in units.reversed() where ms % unit == 0 { return "\(ms / unit)\(suffix)" }
        return "\(ms)ms"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
