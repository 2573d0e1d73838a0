import Logging
import Testing

@testable import Cluster

private let logger = Logger(label: "test.startup")

/// The address is in use, so a server or mailbox made on it fails at its very last step, when it
/// starts listening: after its socket, contexts and aios were opened.
@Suite("start-up that fails half way", .timeLimit(.minutes(1)))
struct StartupFailureTests {
    @Test("a server that cannot listen closes its socket and contexts and frees their aios")
    func server() async throws {
        var settings = RequestServerSettings()
        settings.concurrency = 8
        let handles = HandleCount()
        // The count sees what a server holds (a socket, 8 contexts, 8 aios), and its close releases it.
        let owner = try HandleCount.$current.withValue(handles) {
            try RequestServer(listen: "tcp://127.0.0.1:0", settings: settings, logger: logger) { $0 }
        }
        #expect(handles.open == 17)

        let attempt = HandleCount()
        #expect {
            try HandleCount.$current.withValue(attempt) {
                try RequestServer(listen: owner.boundAddress, settings: settings, logger: logger) { $0 }
            }
        } throws: { ($0 as? TransportError)?.code == .address }
        #expect(attempt.open == 0)

        // The address still belongs to the first server, which still answers.
        let client = try RequestClient(dial: owner.boundAddress)
        #expect(try await client.request([7], timeout: .seconds(5)) == [7])
        client.close()
        await owner.close()
        #expect(handles.open == 0)
    }

    @Test("a mailbox that cannot listen closes its socket and frees its aio")
    func mailbox() async throws {
        let handles = HandleCount()
        let owner = try HandleCount.$current.withValue(handles) { try Mailbox(listen: "tcp://127.0.0.1:0") }
        #expect(handles.open == 2)

        let attempt = HandleCount()
        #expect {
            try HandleCount.$current.withValue(attempt) { try Mailbox(listen: owner.boundAddress) }
        } throws: { ($0 as? TransportError)?.code == .address }
        #expect(attempt.open == 0)

        let sender = try MailboxSender(dial: owner.boundAddress)
        try await sender.send([7])
        for await message in owner.messages {
            #expect(message == [7])
            break
        }
        sender.close()
        await owner.close()
        #expect(handles.open == 0)
    }
}
