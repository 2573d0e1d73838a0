import Foundation
import Storage
import SwiftProtobuf
import Testing
import Wire

@testable import Actors

/// A message the protobuf encoder refuses: it reports a required field as unset.
private struct Unencodable: SwiftProtobuf.Message {
    static let protoMessageName = "test.Unencodable"
    var unknownFields = SwiftProtobuf.UnknownStorage()
    var isInitialized: Bool { false }
    mutating func decodeMessage<D: SwiftProtobuf.Decoder>(decoder: inout D) throws {}
    func traverse<V: SwiftProtobuf.Visitor>(visitor: inout V) throws {}
    func isEqualTo(message: any SwiftProtobuf.Message) -> Bool { message is Unencodable }
}

@Suite("errors about stored bytes keep their cause")
struct StoredBytesErrorTests {
    @Test("a message that cannot be encoded is an encoding error carrying the encoder's error, not a write error")
    func encodingFailure() throws {
        let error = try #require(throws: StorageError.self) { try encode(Unencodable()) }
        #expect(error.code == .encoding)
        #expect(error.operation == "encode test.Unencodable")
        #expect(error.cause as? BinaryEncodingError == .missingRequiredFields)
        #expect(
            error.description
                == "storage encoding error in encode test.Unencodable: the message could not be serialized (cause: missingRequiredFields)"
        )
    }

    @Test(
        "a corrupt model snapshot stops recovery with a corruption error naming the shard, the bytes and the decoder's reason"
    )
    func corruptSnapshot() throws {
        let harness = try Harness()
        let key = StorageKeys.Models.key(shard: 0, model: "m")
        try harness.database.put(key, [0xFF, 0xFF, 0xFF], in: harness.store.models)
        let error = try #require(throws: StorageError.self) { try harness.shard(0) }
        #expect(error.code == .corruption)
        #expect(error.operation == "decode model snapshot of shard 0")
        #expect(error.message == "3 stored bytes are not a valid infranaut.v1.ModelSnapshot")
        #expect(error.cause is BinaryDecodingError)
        // Another shard's range is untouched by the corrupt key.
        _ = try harness.shard(1)
    }
}
