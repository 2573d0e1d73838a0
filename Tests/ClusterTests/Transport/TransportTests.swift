import Cluster
import Logging
import Synchronization
import Testing

private let logger = Logger(label: "test.transport")

private func echoServer(
    concurrency: Int = 16, maxMessageBytes: Int = 1 << 20,
    handler: @escaping RequestServer.Handler = { $0 }
) throws -> RequestServer {
    var settings = RequestServerSettings()
    settings.concurrency = concurrency
    settings.maxMessageBytes = maxMessageBytes
    return try RequestServer(listen: "tcp://127.0.0.1:0", settings: settings, logger: logger, handler: handler)
}

/// Holds request handlers until the test opens it, so that "still running" does not depend on
/// how long a sleep lasts on a busy machine.
private final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLock { state -> Bool in
                if !state.open { state.waiting.append(continuation) }
                return state.open
            }
            if isOpen { continuation.resume() }
        }
    }

    func open() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }
}

@Suite("nng transport", .timeLimit(.minutes(1)))
struct TransportTests {
    @Test("a request gets its own reply, with many requests in flight at once")
    func concurrentRequests() async throws {
        let server = try echoServer { request in
            try? await Task.sleep(for: .milliseconds(Int.random(in: 0...5)))
            return request.reversed()
        }
        #expect(!server.boundAddress.hasSuffix(":0"))
        let client = try RequestClient(dial: server.boundAddress)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let payload = Array("request-\(i)-".utf8) + [UInt8](repeating: UInt8(i % 251), count: i * 37)
                    let reply = try await client.request(payload, timeout: .seconds(10))
                    #expect(reply == payload.reversed())
                }
            }
            try await group.waitForAll()
        }
        client.close()
        await server.close()
    }

    @Test("a handler that does not answer makes the request time out at its deadline, not hang")
    func requestTimeout() async throws {
        let gate = Gate()
        let server = try echoServer { request in
            await gate.wait()
            return request
        }
        let client = try RequestClient(dial: server.boundAddress)
        let started = ContinuousClock.now
        do {
            _ = try await client.request([1, 2, 3], timeout: .milliseconds(300))
            Issue.record("a request to a handler that never answers got a reply")
        } catch {
            #expect(error.code == .timedOut, "\(error)")
        }
        // Not before the deadline (a busy machine can only make it later).
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        gate.open()
        client.close()
        await server.close(grace: .seconds(3))
    }

    @Test("an answer without a reply leaves the client to its deadline, and the context serves the next request")
    func noReply() async throws {
        // Two contexts: ten unanswered requests would take them five times over if an unanswered
        // request held its context.
        var settings = RequestServerSettings()
        settings.concurrency = 2
        let server = try RequestServer(
            listen: "tcp://127.0.0.1:0", settings: settings, logger: logger,
            vouchingHandler: { RequestServer.Answer(reply: $0.first == 0 ? nil : $0, vouch: true) })
        let client = try RequestClient(dial: server.boundAddress)
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    await #expect(throws: TransportError.timedOut(operation: "request to \(server.boundAddress)")) {
                        try await client.request([0], timeout: .milliseconds(300))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        #expect(try await client.request([7], timeout: .seconds(10)) == [7])
        // The server counts a request done once its reply is sent, which the client may see first.
        let deadline = ContinuousClock.now + .seconds(10)
        while server.inFlight > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.inFlight == 0)
        client.close()
        await server.close()
    }

    @Test("no server at the address: timed out, retryable")
    func noServer() async throws {
        // Bind and close a server to learn a port nobody listens on.
        let probe = try echoServer()
        let address = probe.boundAddress
        await probe.close()
        let client = try RequestClient(dial: address)
        do {
            _ = try await client.request([1], timeout: .milliseconds(300))
            Issue.record("a request to a closed port succeeded")
        } catch {
            #expect(error.code == .timedOut)
            #expect(error.isRetryable)
        }
        client.close()
    }

    @Test("reporting the first dial: a refused port and an unresolvable host fail with their own codes, not a timeout")
    func firstDialReported() async throws {
        var settings = RequestClientSettings()
        settings.dial = .reportFirstAttempt
        let probe = try echoServer()
        let closedPort = probe.boundAddress
        await probe.close()
        // Deadlines far beyond the test's time limit: only the dial's own error can end these.
        func firstError(_ address: String) async throws -> TransportError? {
            let client = try RequestClient(dial: address, settings: settings)
            defer { client.close() }
            do {
                _ = try await client.request([1], timeout: .seconds(120))
                return nil
            } catch {
                return error
            }
        }
        let refused = try await firstError(closedPort)
        #expect(refused?.code == .refused, "\(String(describing: refused))")
        #expect(refused?.isRetryable == false)
        let unresolvable = try await firstError("tcp://no-such-host.invalid:7400")
        #expect(unresolvable?.code == .address, "\(String(describing: unresolvable))")
        // nng accepts a port out of range when the client is made; the dial then reports it.
        let badPort = try await firstError("tcp://127.0.0.1:99999")
        #expect(badPort?.code == .address, "\(String(describing: badPort))")

        // Concurrent first requests share the one attempt and all get through.
        let server = try echoServer()
        let client = try RequestClient(dial: server.boundAddress, settings: settings)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    let reply = try await client.request([UInt8(i)], timeout: .seconds(10))
                    #expect(reply == [UInt8(i)])
                }
            }
            try await group.waitForAll()
        }
        client.close()
        await server.close()
    }

    @Test("closing the client fails requests in flight with .closed, not at their deadline")
    func clientCloseWithRequestsInFlight() async throws {
        let gate = Gate()
        let server = try echoServer { request in
            await gate.wait()
            return request
        }
        let client = try RequestClient(dial: server.boundAddress)
        try await withThrowingTaskGroup(of: TransportError.Code?.self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        // A deadline beyond the suite's time limit: only the close can end these.
                        _ = try await client.request([UInt8(i)], timeout: .seconds(120))
                        return nil
                    } catch {
                        return (error as? TransportError)?.code
                    }
                }
            }
            // Close once requests are in flight (held by the gate), however long that takes.
            let deadline = ContinuousClock.now + .seconds(20)
            while server.inFlight == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(server.inFlight > 0)
            client.close()
            var codes: [TransportError.Code?] = []
            for try await code in group { codes.append(code) }
            #expect(codes.count == 20)
            #expect(codes.allSatisfy { $0 == .closed }, "codes: \(codes)")
        }
        await #expect(throws: TransportError.self) { try await client.request([1]) }
        gate.open()
        await server.close(grace: .seconds(2))
    }

    @Test("closing the server lets running handlers reply, then refuses")
    func serverCloseDrainsInFlight() async throws {
        let server = try echoServer { request in
            try? await Task.sleep(for: .milliseconds(300))
            return request
        }
        let client = try RequestClient(dial: server.boundAddress)
        async let first = client.request([42], timeout: .seconds(10))
        // Wait until the handler is running (the machine may be busy with other tests).
        let deadline = ContinuousClock.now + .seconds(5)
        while server.inFlight == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.inFlight == 1)
        await server.close(grace: .seconds(3))
        #expect(try await first == [42])
        await #expect(throws: TransportError.self) { try await client.request([7], timeout: .milliseconds(300)) }
        client.close()
    }

    @Test("a message over the server's size limit is dropped by nng; the client sees a timeout")
    func oversizedMessage() async throws {
        let server = try echoServer(maxMessageBytes: 1024)
        let client = try RequestClient(dial: server.boundAddress)
        #expect(try await client.request([UInt8](repeating: 1, count: 512), timeout: .seconds(5)).count == 512)
        await #expect(throws: TransportError.self) {
            try await client.request([UInt8](repeating: 1, count: 64 * 1024), timeout: .milliseconds(500))
        }
        // The server keeps serving other requests after dropping one.
        let other = try RequestClient(dial: server.boundAddress)
        #expect(try await other.request([3], timeout: .seconds(5)) == [3])
        other.close()
        client.close()
        await server.close()
    }

    @Test("the linked nng is 1.8.0 or later (1.5.2 hangs in nng_close)")
    func nngIsRecentEnough() {
        let parts = nngVersion.split(separator: ".").compactMap { Int($0) }
        #expect(parts.count == 3, "nng version \(nngVersion)")
        #expect(
            parts.lexicographicallyPrecedes([1, 8, 0]) == false, "linked nng \(nngVersion); run scripts/install-nng.sh")
    }

    @Test("repeated open, use and close leaves nothing behind")
    func openCloseCycles() async throws {
        for _ in 0..<20 {
            let server = try echoServer(concurrency: 4)
            let client = try RequestClient(dial: server.boundAddress)
            #expect(try await client.request([9], timeout: .seconds(5)) == [9])
            client.close()
            await server.close()
        }
    }
}

@Suite("nng mailboxes", .timeLimit(.minutes(1)))
struct MailboxTests {
    @Test("messages pushed arrive in order and close ends the stream")
    func pushPull() async throws {
        let mailbox = try Mailbox(listen: "tcp://127.0.0.1:0")
        let sender = try MailboxSender(dial: mailbox.boundAddress)
        for i in 0..<500 {
            try await sender.send(Array("m\(i)".utf8))
        }
        var received: [String] = []
        for await message in mailbox.messages {
            received.append(String(decoding: message, as: UTF8.self))
            if received.count == 500 { break }
        }
        #expect(received == (0..<500).map { "m\($0)" })
        sender.close()
        await mailbox.close()
        var after = 0
        for await _ in mailbox.messages { after += 1 }
        #expect(after == 0)
    }

    @Test("send to nobody times out instead of hanging")
    func sendWithoutPeer() async throws {
        let probe = try Mailbox(listen: "tcp://127.0.0.1:0")
        let address = probe.boundAddress
        await probe.close()
        let sender = try MailboxSender(dial: address)
        await #expect(throws: TransportError.self) { try await sender.send([1], timeout: .milliseconds(200)) }
        sender.close()
    }
}
