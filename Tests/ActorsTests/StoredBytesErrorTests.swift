import Cluster
import Foundation
import Logging
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
        "a corrupt raft log entry stops recovery with a corruption error naming the shard, the bytes and the decoder's reason"
    )
    func corruptLogEntry() async throws {
        let harness = try Harness()
        let key = StorageKeys.RaftLog.key(shard: 0, index: 2)
        try harness.database.put(key, [0xFF, 0xFF, 0xFF], in: harness.store.raftLog)
        let error = try #require(throws: StorageError.self) {
            try ShardActor(
                shard: 0, nodeID: "n1", store: harness.store, writer: harness.writer, settings: harness.settings,
                logger: Logger(label: "test"))
        }
        #expect(error.code == .corruption)
        #expect(error.operation == "decode raft entry of shard 0")
        #expect(error.message == "3 stored bytes are not a valid infranaut.v1.RaftLogEntry")
        #expect(error.cause is BinaryDecodingError)
        // Another shard's range is untouched by the corrupt key.
        _ = try await harness.shard(1)
    }

    @Test("a gap in a shard's raft log stops recovery with a corruption error naming the missing index")
    func logGap() throws {
        let harness = try Harness()
        var batch = WriteBatch()
        let entry = RaftEntry(term: 1, index: 3, body: .noop)
        try RaftLogStore(store: harness.store, shard: 2).add(RaftPersist(entries: [entry]), to: &batch)
        try harness.database.write(batch, sync: true)
        let error = try #require(throws: StorageError.self) {
            try ShardActor(
                shard: 2, nodeID: "n1", store: harness.store, writer: harness.writer, settings: harness.settings,
                logger: Logger(label: "test"))
        }
        #expect(error.code == .corruption)
        #expect(error.message == "entry 3 where 2 was due")
    }
}
