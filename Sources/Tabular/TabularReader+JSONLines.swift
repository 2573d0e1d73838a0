import Foundation

/// JSON Lines rows: one object of scalars per line; keys first seen later become new columns.
extension TabularReader {
    func nextJSONRow() throws(TabularError) -> [TabularCell]? {
        while true {
            guard let line = try nextLine() else { return nil }
            lineNumber += 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }) {
                continue
            }
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line), options: [.fragmentsAllowed])
            } catch {
                // Foundation rejects a number beyond Double's range with a generic message: name it.
                if let (key, literal) = TabularNumber.firstOutOfRange(inJSON: line) {
                    throw outOfRange(lineNumber, column: key, value: literal)
                }
                throw TabularError(
                    path: path, line: lineNumber, message: "not valid JSON (\((error as NSError).localizedDescription))"
                )
            }
            guard let dictionary = object as? [String: Any] else {
                throw TabularError(path: path, line: lineNumber, message: "expected a JSON object per line")
            }
            var row = [TabularCell](repeating: .missing, count: columns.count)
            for key in dictionary.keys.sorted() {
                let index: Int
                if let known = columnIndex[key] {
                    index = known
                } else {
                    index = columns.count
                    columns.append(key)
                    columnIndex[key] = index
                    row.append(.missing)
                }
                guard let cell = Self.cell(json: dictionary[key]!) else {
                    throw outOfRange(lineNumber, column: key, value: Array("\(dictionary[key]!)".utf8))
                }
                row[index] = cell
            }
            return row
        }
    }

    /// The cell of a JSON value, or `nil` for a number beyond `Double`'s range (JSON has no
    /// infinity, so an infinite value can only come from such a literal).
    static func cell(json value: Any) -> TabularCell? {
        switch value {
        case is NSNull: return .missing
        case let flag as Bool where Self.isBoolean(value):
            return .bool(flag)
        case let number as NSNumber:
            let double = number.doubleValue
            return double.isFinite ? .number(double) : nil
        case let string as String: return .string(string)
        default:
            if let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]) {
                return .string(String(decoding: data, as: UTF8.self))
            }
            return .string("\(value)")
        }
    }

    /// JSON `true`/`false` arrive as NSNumbers whose Objective-C type is `c` (char); integers and
    /// doubles use other codes, so 1 and 0 stay numbers.
    static func isBoolean(_ value: Any) -> Bool {
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    private func nextLine() throws(TabularError) -> [UInt8]? {
        var line: [UInt8] = []
        while true {
            guard let byte = try nextByte() else { return line.isEmpty ? nil : line }
            if byte == UInt8(ascii: "\n") { return line }
            guard line.count < settings.maxLineBytes else { throw lineTooLong(lineNumber + 1) }
            line.append(byte)
        }
    }
}
