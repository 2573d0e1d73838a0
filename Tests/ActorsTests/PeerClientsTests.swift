import Cluster
import Foundation
import Logging
import Synchronization
import Testing
import Wire

@testable import Actors

/// A TCP relay between a client and a server on loopback that can stall the connections it carries:
/// a stalled connection stays open but moves no more bytes either way, as a connection whose
/// packets a partition dropped does while TCP backs off. Connections made after the stall work.
private final class StallingRelay: @unchecked Sendable {
    let port: UInt16
    private let listener: Int32
    private let target: UInt16
    private let state = Mutex<(accepted: Int, stalledBelow: Int, closed: Bool)>((0, 0, false))

    init(to target: UInt16) throws {
        self.target = target
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw RelayError("cannot listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    var accepted: Int { state.withLock { $0.accepted } }

    /// Every connection accepted so far stops moving bytes.
    func stallExisting() { state.withLock { $0.stalledBelow = $0.accepted } }

    func close() {
        state.withLock { $0.closed = true }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let number = state.withLock { state -> Int in
                state.accepted += 1
                return state.accepted
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(server)
                continue
            }
            Thread.detachNewThread { [self] in pump(from: client, to: server, connection: number) }
            Thread.detachNewThread { [self] in pump(from: server, to: client, connection: number) }
        }
    }

    /// Copies bytes until either side closes; a stalled connection is left as it is (open, its
    /// bytes unread) until the relay closes.
    private func pump(from source: Int32, to destination: Int32, connection: Int) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (stalled, closed) = state.withLock { (connection <= $0.stalledBelow, $0.closed) }
            if closed { break }
            if stalled {
                usleep(20_000)
                continue
            }
            var poller = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 20) >= 0 else { break }
            // Checked again: bytes sent after the stall must stay unread.
            guard poller.revents != 0, !state.withLock({ connection <= $0.stalledBelow }) else { continue }
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { break }
            var written = 0
            while written < count {
                let step = buffer[written..<count].withUnsafeBytes { write(destination, $0.baseAddress, $0.count) }
                guard step > 0 else { return }
                written += step
            }
        }
        shutdown(destination, Int32(SHUT_WR))
    }
}

private struct RelayError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("peer clients")
struct PeerClientsTests {
    @Test("a peer connection that stops answering is replaced, and requests get through on the new one")
    func silentConnectionIsReplaced() async throws {
        let secret = try ClusterSecret(Array("peer-clients-test-secret".utf8), source: "test")
        let serverSide = PeerAuthenticator(seal: PeerSeal(secret: secret, sender: "server"))
        let logger = Logger(label: "peer-clients-test")
        let server = try RequestServer(listen: "tcp://127.0.0.1:0", logger: logger) { bytes in
            // The MAC only: freshness is not what this test is about, and a machine busy with other
            // suites may hold a frame longer than the replay window allows.
            guard let opened = try? serverSide.seal.open(bytes, expecting: .request) else { return [] }
            let answer = Infranaut_V1_Response.with { $0.members = .with { $0.status = .ok } }
            return serverSide.seal.seal(answer.encoded, channel: .reply, replyingTo: opened.header).bytes
        }
        defer { Task { await server.close() } }
        let serverPort = UInt16(server.boundAddress.split(separator: ":").last!)!
        let relay = try StallingRelay(to: serverPort)
        defer { relay.close() }
        let peers = PeerClients(
            authenticator: PeerAuthenticator(seal: PeerSeal(secret: secret, sender: "client")),
            faults: FaultInjector(myself: NodeID("client"), logger: logger), maxReplyBytes: 1 << 20)
        defer { peers.closeAll() }
        let address = "tcp://127.0.0.1:\(relay.port)"
        let members = Infranaut_V1_Request.with {
            $0.version = 1
            $0.members = .init()
        }

        // Generous: the first exchange waits for the pool's threads on a machine busy with other suites.
        #expect(try await peers.call(members, to: address, timeout: .seconds(60)).members.status.code == .ok)
        #expect(relay.accepted == 1)
        relay.stallExisting()
        // Requests given less time than the silence that condemns a connection do not count: a
        // client asking for a few ms must not make the node drop its peer connections.
        let shortStart = ContinuousClock.now
        while ContinuousClock.now - shortStart < PeerClients.silenceBeforeReplacing + .milliseconds(500) {
            _ = try? await peers.call(members, to: address, timeout: .milliseconds(300))
        }
        #expect(peers.replacedConnections == 0)
        #expect(relay.accepted == 1)
        // Requests that waited long enough time out on the stalled connection; then it is
        // replaced and the next request dials a new one. Without replacement every one times out.
        var timedOut = 0
        var answered = false
        for _ in 0..<100 where !answered {
            do {
                answered =
                    try await peers.call(members, to: address, timeout: PeerClients.silenceBeforeReplacing)
                    .members.status.code == .ok
            } catch {
                timedOut += 1
            }
        }
        #expect(answered, "no request got through after the connection stalled")
        #expect(timedOut >= PeerClients.timeoutsBeforeReplacing)
        // On a busy machine the new connection may be slow to answer too and be replaced again.
        #expect(peers.replacedConnections >= 1)
        #expect(relay.accepted == Int(peers.replacedConnections) + 1)
    }
}
