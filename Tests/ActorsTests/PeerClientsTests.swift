import Cluster
import Foundation
import Logging
import Synchronization
import Testing
import Wire

@testable import Actors

#if canImport(Glibc)
    import Glibc
#endif

@Suite("peer clients")
struct PeerClientsTests {
    @Test("a connection that went silent (a cut link) is replaced: the call after a timeout gets through on a new one")
    func silentConnectionReplaced() async throws {
        let secret = try ClusterSecret(Array("a-cluster-secret-for-tests".utf8), source: "test")
        let serverAuth = PeerAuthenticator(seal: PeerSeal(secret: secret, sender: "server"))
        let server = try RequestServer(
            listen: "tcp://127.0.0.1:0", settings: RequestServerSettings(), logger: Logger(label: "test"),
            vouchingHandler: { bytes in
                guard let opened = try? serverAuth.admit(bytes, on: .request) else {
                    return RequestServer.Answer(reply: [], vouch: false)
                }
                let reply = Infranaut_V1_Response.with { $0.members = .init() }.encoded
                return RequestServer.Answer(
                    reply: serverAuth.seal.seal(reply, channel: .reply, replyingTo: opened.header).bytes, vouch: true)
            })
        let proxy = try SilencingProxy(to: UInt16(server.boundAddress.split(separator: ":").last!)!)
        let peers = PeerClients(
            authenticator: PeerAuthenticator(seal: PeerSeal(secret: secret, sender: "client")), maxReplyBytes: 1 << 20)
        defer {
            peers.closeAll()
            proxy.close()
        }
        let request = Infranaut_V1_Request.with { $0.members = .init() }
        let address = "tcp://127.0.0.1:\(proxy.port)"

        // Generous deadlines for the calls that must succeed: the server's handler runs on the
        // cooperative pool, which the simulation suites running alongside keep busy for seconds.
        let first = try await peers.call(request, to: address, timeout: .seconds(60))
        #expect(first.members == .init())

        // The link is cut the way a partition cuts it: the connection stays open, nothing arrives.
        proxy.silenceExisting()
        await #expect(throws: TransportError.self) {
            _ = try await peers.call(request, to: address, timeout: .milliseconds(500))
        }
        do {
            let afterHeal = try await peers.call(request, to: address, timeout: .seconds(60))
            #expect(afterHeal.members == .init())
        } catch {
            Issue.record(
                "the call after the timeout failed (\(error)); connections accepted: \(proxy.connectionsAccepted)")
        }
        #expect(proxy.connectionsAccepted == 2)
        await server.close()
    }
}

/// A TCP relay on a loopback port to `target` whose existing connections can be silenced: bytes
/// keep being read from both sides and are dropped, as over a cut link, while new connections
/// relay normally.
final class SilencingProxy: Sendable {
    let port: UInt16
    private let listener: Int32
    private let target: UInt16
    private let state = Mutex<(silencedBelow: Int, accepted: Int, sockets: [Int32], closed: Bool)>((0, 0, [], false))

    init(to target: UInt16) throws {
        self.target = target
        (listener, port) = try Self.listen()
        let accepting = Thread { [self] in acceptLoop() }
        accepting.start()
    }

    private static func listen() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(fd, 16) == 0 else { throw TestFailure("proxy: bind/listen failed") }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: actual.sin_port))
    }

    var connectionsAccepted: Int { state.withLock { $0.accepted } }

    /// From now on, connections accepted so far relay nothing.
    func silenceExisting() { state.withLock { $0.silencedBelow = $0.accepted } }

    func close() {
        let sockets = state.withLock { state -> [Int32] in
            state.closed = true
            return state.sockets
        }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
        for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                // Interrupted or aborted by the peer: keep accepting until closed.
                if state.withLock({ $0.closed }) { return }
                usleep(1_000)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: target)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(upstream)
                continue
            }
            let index = state.withLock { state -> Int in
                state.sockets += [client, upstream]
                state.accepted += 1
                return state.accepted - 1
            }
            Thread { [self] in relay(from: client, to: upstream, connection: index) }.start()
            Thread { [self] in relay(from: upstream, to: client, connection: index) }.start()
        }
    }

    private func relay(from source: Int32, to destination: Int32, connection: Int) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            guard state.withLock({ connection >= $0.silencedBelow }) else { continue }
            let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress, count, Int32(MSG_NOSIGNAL)) }
            guard written == count else { break }
        }
        shutdown(destination, Int32(SHUT_WR))
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
