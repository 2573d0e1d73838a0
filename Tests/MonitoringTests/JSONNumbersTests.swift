import Foundation
import Testing

@testable import Monitoring

@Suite struct JSONNumbersTests {
    struct Sample: Encodable {
        var name: String
        var mean: Double?
        var variance: Double
        var values: [Double]
        var counts: [String: UInt64]
    }

    func render(_ value: Sample) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try JSONNumbers.render { placeholder in
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: placeholder, negativeInfinity: placeholder, nan: placeholder)
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        }
    }

    @Test func nonFiniteNumbersBecomeNull() throws {
        let placeholder = JSONNumbers.placeholders.0
        let text = try render(
            Sample(
                name: placeholder, mean: .nan, variance: .infinity, values: [1.5, -.infinity, 0, .nan],
                counts: ["a": 3]))
        for bad in ["nan", "inf", "-inf", JSONNumbers.placeholders.1] {
            #expect(!text.contains("\"\(bad)\""), "\(text)")
        }
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(json["mean"] is NSNull && json["variance"] is NSNull)
        let values = try #require(json["values"] as? [Any])
        #expect(values.count == 4 && values[1] is NSNull && values[3] is NSNull)
        #expect((values[0] as? Double) == 1.5 && (values[2] as? Double) == 0)
        // A string that happens to equal the placeholder is data, not a number.
        #expect(json["name"] as? String == placeholder)
        #expect((json["counts"] as? [String: Any])?["a"] as? Int == 3)
    }

    @Test func finiteOutputIsUnchanged() throws {
        let sample = Sample(name: "x", mean: nil, variance: 2.25, values: [1, 2], counts: [:])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        #expect(try render(sample) == String(decoding: try encoder.encode(sample), as: UTF8.self))
    }
}
