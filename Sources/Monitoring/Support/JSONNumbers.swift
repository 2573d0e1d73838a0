/// JSON output in which every number is a JSON number and every non-finite `Double` is `null`.
///
/// JSON has no NaN or infinity. An encoder such as Foundation's `JSONEncoder` can only throw on
/// them or write them as strings (`"nan"`), which a consumer then reads as text where it expects
/// a number. Here NaN (an undefined figure such as the mean of no values) and ±infinity (a figure
/// beyond the `Double` range) both become `null`.
public enum JSONNumbers {
    /// The two placeholders passed to the encoding closure. Same length, so the two outputs line
    /// up byte for byte.
    static let placeholders = ("<<infranaut-non-finite-a>>", "<<infranaut-non-finite-b>>")

    /// Renders JSON with non-finite numbers as `null`.
    ///
    /// `encode` must write each non-finite number as the given placeholder string (for
    /// `JSONEncoder`: `nonConformingFloatEncodingStrategy = .convertToString(...)` with the
    /// placeholder for all three) and be deterministic (e.g. sorted keys). It runs twice, once
    /// per placeholder; a quoted placeholder that the second output also holds at the same place
    /// becomes `null`. A string value that merely equals a placeholder is left alone, because
    /// it is the same in both outputs.
    /// - Parameters:
    ///   - encode: encodes the value, writing non-finite numbers as its argument.
    public static func render(_ encode: (_ placeholder: String) throws -> String) rethrows -> String {
        let (a, b) = placeholders
        let first = Array(try encode(a).utf8)
        let second = Array(try encode(b).utf8)
        guard first != second, first.count == second.count else { return String(decoding: first, as: UTF8.self) }
        let quotedA = Array("\"\(a)\"".utf8), quotedB = Array("\"\(b)\"".utf8)
        let null = Array("null".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(first.count)
        var i = 0
        while i < first.count {
            if first[i] == UInt8(ascii: "\""), i + quotedA.count <= first.count,
                first[i..<i + quotedA.count].elementsEqual(quotedA),
                second[i..<i + quotedB.count].elementsEqual(quotedB)
            {
                out.append(contentsOf: null)
                i += quotedA.count
            } else {
                out.append(first[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
