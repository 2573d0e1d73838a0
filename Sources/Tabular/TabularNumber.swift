import Foundation

/// The one number grammar of ``TabularReader`` (CSV fields and JSON Lines values alike).
enum TabularNumber: Equatable {
    case number(Double)
    /// A well-formed literal whose magnitude is beyond `Double`'s range, such as `1e400`.
    case outOfRange
    case notANumber

    /// Parses a whole field: a decimal literal (optional sign, digits with an optional fraction,
    /// optional exponent); with `words`, also `inf`, `infinity` and `nan` in any case with an
    /// optional sign. Anything else, hex literals included, is not a number.
    static func parse(_ field: UnsafeBufferPointer<UInt8>, words: Bool) -> TabularNumber {
        let count = field.count
        var i = 0
        if i < count && (field[i] == UInt8(ascii: "+") || field[i] == UInt8(ascii: "-")) { i += 1 }
        guard i < count else { return .notANumber }
        if words && !isDigit(field[i]) && field[i] != UInt8(ascii: ".") {
            let word = field[i...].map { $0 | 0x20 }
            let negative = field[0] == UInt8(ascii: "-")
            if word.elementsEqual("inf".utf8) || word.elementsEqual("infinity".utf8) {
                return .number(negative ? -.infinity : .infinity)
            }
            return word.elementsEqual("nan".utf8) ? .number(.nan) : .notANumber
        }
        var digits = 0
        while i < count && isDigit(field[i]) {
            i += 1
            digits += 1
        }
        if i < count && field[i] == UInt8(ascii: ".") {
            i += 1
            while i < count && isDigit(field[i]) {
                i += 1
                digits += 1
            }
        }
        guard digits > 0 else { return .notANumber }
        if i < count && field[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < count && (field[i] == UInt8(ascii: "+") || field[i] == UInt8(ascii: "-")) { i += 1 }
            var exponentDigits = 0
            while i < count && isDigit(field[i]) {
                i += 1
                exponentDigits += 1
            }
            guard exponentDigits > 0 else { return .notANumber }
        }
        guard i == count else { return .notANumber }
        let value = withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer -> Double in
            for (i, byte) in field.enumerated() { buffer[i] = CChar(bitPattern: byte) }
            buffer[count] = 0
            return strtod(buffer.baseAddress!, nil)
        }
        // The grammar admits no infinity here, so an infinite result is an overflow.
        return value.isFinite ? .number(value) : .outOfRange
    }

    static func parse(_ field: some Collection<UInt8>, words: Bool) -> TabularNumber {
        Array(field).withUnsafeBufferPointer { parse($0, words: words) }
    }

    /// The first number literal of a JSON line that is beyond `Double`'s range, with the top-level
    /// key it belongs to: what Foundation's generic "not in the correct format" stands for.
    static func firstOutOfRange(inJSON line: [UInt8]) -> (key: String, literal: [UInt8])? {
        var i = 0
        var depth = 0
        var key = "?"
        var expectKey = false
        while i < line.count {
            let byte = line[i]
            switch byte {
            case UInt8(ascii: "\""):
                let start = i + 1
                i += 1
                while i < line.count && line[i] != UInt8(ascii: "\"") { i += line[i] == UInt8(ascii: "\\") ? 2 : 1 }
                if depth == 1 && expectKey {
                    key = String(decoding: line[start..<min(i, line.count)], as: UTF8.self)
                    expectKey = false
                }
                i += 1
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                expectKey = byte == UInt8(ascii: "{") && depth == 1
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                i += 1
            case UInt8(ascii: ","):
                if depth == 1 { expectKey = true }
                i += 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                while i < line.count
                    && (isDigit(line[i])
                        || [
                            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                            UInt8(ascii: "e"), UInt8(ascii: "E"),
                        ].contains(line[i]))
                {
                    i += 1
                }
                let literal = Array(line[start..<i])
                if parse(literal, words: false) == .outOfRange { return (key, literal) }
            default:
                i += 1
            }
        }
        return nil
    }

    @inline(__always)
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}
