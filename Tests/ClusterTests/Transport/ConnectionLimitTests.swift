import Cluster
import Logging
import Testing

@Suite("connection limit", .timeLimit(.minutes(1)))
struct ConnectionLimitTests {
    @Test("a server keeps at most maxConnections connections; a closed one frees its place")
    func limit() async throws {
        var settings = RequestServerSettings()
        settings.maxConnections = 2
        let server = try RequestServer(listen: "tcp://127.0.0.1:0", settings: settings, logger: Logger(label: "test")) {
            $0
        }
        let first = try RequestClient(dial: server.boundAddress)
        let second = try RequestClient(dial: server.boundAddress)
        #expect(try await first.request([1], timeout: .seconds(10)) == [1])
        #expect(try await second.request([2], timeout: .seconds(10)) == [2])
        #expect(server.connectionCounts.open == 2)

        // The third connection is closed as it arrives (and again on every redial): no answer.
        var third = try RequestClient(dial: server.boundAddress)
        await #expect(throws: TransportError.self) { try await third.request([3], timeout: .milliseconds(500)) }
        #expect(server.connectionCounts.refused >= 1)
        #expect(server.connectionCounts.open == 2)
        third.close()

        // Once one of the first two goes, a new client gets its place.
        first.close()
        var freed = false
        for _ in 0..<100 where !freed {
            if server.connectionCounts.open < 2 { freed = true } else { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(freed)
        third = try RequestClient(dial: server.boundAddress)
        #expect(try await third.request([4], timeout: .seconds(10)) == [4])
        third.close()
        second.close()
        await server.close()
    }

    @Test("connections that never vouched for themselves make room: the oldest of them is closed for a new one")
    func unvouchedMakeRoom() async throws {
        var settings = RequestServerSettings()
        settings.maxConnections = 8
        settings.maxUnvouchedConnections = 2
        // Only requests starting with 1 vouch for their connection (think: proved the secret).
        let server = try RequestServer(
            listen: "tcp://127.0.0.1:0", settings: settings, logger: Logger(label: "test"),
            vouchingHandler: { RequestServer.Answer(reply: $0, vouch: $0.first == 1) })
        let trusted = try RequestClient(dial: server.boundAddress)
        #expect(try await trusted.request([1], timeout: .seconds(10)) == [1])
        // Two strangers that talk but never vouch fill the unvouched places. (On a loaded machine a
        // connection may be reset while it is being set up, as any client can see; retry then.)
        // An evicted stranger does not redial during the test: with only two unvouched places, two
        // strangers redialling every 50 ms would in turn evict the newcomer before a busy machine
        // serves its first request (with the default eight places that takes eight redials).
        var patient = RequestClientSettings()
        patient.reconnectMin = .seconds(30)
        patient.reconnectMax = .seconds(30)
        let strangers = try (0..<2).map { _ in try RequestClient(dial: server.boundAddress, settings: patient) }
        for stranger in strangers { #expect(try await Self.request(stranger, [0]) == [0]) }
        #expect(server.connectionCounts.open == 3)
        // A newcomer still gets in, in place of the oldest stranger; the trusted one is untouched.
        let newcomer = try RequestClient(dial: server.boundAddress)
        #expect(try await Self.request(newcomer, [1]) == [1])
        #expect(server.connectionCounts.evicted >= 1)
        #expect(try await trusted.request([1, 2], timeout: .seconds(10)) == [1, 2])
        for client in strangers + [trusted, newcomer] { client.close() }
        await server.close()
    }

    /// A request retried (up to 5 times) when its connection was reset or closed under it.
    private static func request(_ client: RequestClient, _ bytes: [UInt8]) async throws -> [UInt8] {
        for _ in 0..<4 {
            do {
                return try await client.request(bytes, timeout: .seconds(10))
            } catch {
                guard error.code == .connectionLost || error.code == .closed else { throw error }
            }
        }
        return try await client.request(bytes, timeout: .seconds(10))
    }
}
