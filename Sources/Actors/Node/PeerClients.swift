import Cluster
import SwiftProtobuf
import Synchronization
import Wire

/// The one way a node calls another node: one request client per peer address (created on first
/// use), every request sealed with the cluster secret, every reply checked to be the sealed answer
/// to that request. Used by forwarding, replication, hand-off, leave and event delivery.
///
/// The node's fault rules (partition drills) apply here to every call: a request to a peer whose
/// traffic is dropped fails at its deadline with the transport's own timeout, as a lost request
/// does, and a delayed peer's request and reply each arrive late.
///
/// Every request says how long this node waits for it (`timeout_ms`), so the peer stops working on
/// it when this node has given up. A connection that stops answering is replaced rather than waited
/// on: once requests on it time out ``timeoutsBeforeReplacing`` times in a row with nothing
/// answered for ``silenceBeforeReplacing``, the client is closed (its requests in flight fail at
/// once) and the next request dials a new connection. A TCP connection cut by a partition keeps
/// its queued frames in retransmission back-off for many seconds after the network heals, while a
/// new connection works at once.
final class PeerClients: Sendable {
    private struct Entry {
        var client: RequestClient
        var lastUsed: ContinuousClock.Instant
        /// When a reply last came back on this connection (or when it was made).
        var lastAnswer: ContinuousClock.Instant
        /// Requests that timed out on this connection since its last reply.
        var silentTimeouts = 0
    }

    let authenticator: PeerAuthenticator
    let faults: FaultInjector
    private let maxReplyBytes: Int
    /// nil once closed, so that no client can be added after `closeAll`.
    private let clients = Mutex<[String: Entry]?>([:])
    private let replacements = Atomic<UInt64>(0)

    /// Longer than any request a peer client carries (snapshots are capped at 30 s).
    static let idleBeforeClose: Duration = .seconds(120)
    static let timeoutsBeforeReplacing = 2
    static let silenceBeforeReplacing: Duration = .seconds(2)

    /// Connections closed and dialled again because they stopped answering.
    var replacedConnections: UInt64 { replacements.load(ordering: .relaxed) }

    init(authenticator: PeerAuthenticator, faults: FaultInjector, maxReplyBytes: Int) {
        self.authenticator = authenticator
        self.faults = faults
        self.maxReplyBytes = maxReplyBytes
    }

    /// Sends `request` to the peer listener at `address` and returns its answer. A peer that
    /// refuses the frame answers PERMISSION_DENIED (unsealed, since it cannot trust the sender);
    /// that answer is returned as is. Any other reply that is not sealed for this request throws.
    func call(_ request: Infranaut_V1_Request, to address: String, timeout: Duration) async throws
        -> Infranaut_V1_Response
    {
        try await call(encoded: try request.serializedBytes(), to: address, timeout: timeout)
    }

    /// ``call(_:to:timeout:)`` for a request that is already encoded (a forwarded client frame).
    func call(encoded body: [UInt8], to address: String, timeout: Duration) async throws -> Infranaut_V1_Response {
        let deadline = ContinuousClock.now + timeout
        let waitMs = UInt32(clamping: max(1, timeout.milliseconds))
        try await passFaults(to: address, deadline: deadline)
        let reply: SealedReply
        let client = try client(for: address)
        let sentMs = PeerSeal.wallClockMilliseconds()
        do {
            reply = try await client.sealedRequest(
                Infranaut_V1_Request.withTimeout(body, milliseconds: waitMs), seal: authenticator.seal,
                timeout: deadline - .now)
        } catch let refusal as SealRefusal {
            authenticator.count(refusal)
            noteAnswer(on: client, at: address)
            throw PeerCallError("the reply from \(address) was refused: \(refusal)")
        } catch let error as TransportError where error.code == .timedOut {
            // A request given less time than the silence that condemns a connection says little
            // about the connection (a client may ask for 1 ms).
            if timeout >= Self.silenceBeforeReplacing { noteTimeout(on: client, at: address) }
            throw error
        }
        noteAnswer(on: client, at: address)
        // The reply crosses the same link (and a rule may have been set while the request was out).
        try await passFaults(to: address, deadline: deadline)
        switch reply {
        case .sealed(let answer, let header):
            authenticator.noteReply(header, requestSentMs: sentMs, receivedMs: PeerSeal.wallClockMilliseconds())
            return try Infranaut_V1_Response(serializedBytes: answer)
        case .unsealed(let bytes):
            if let refusal = try? Infranaut_V1_Response(serializedBytes: bytes),
                refusal.outcome.code == .permissionDenied
            {
                return refusal
            }
            authenticator.count(.notSealed)
            throw PeerCallError("the reply from \(address) was refused: \(SealRefusal.notSealed)")
        }
    }

    private func noteAnswer(on client: RequestClient, at address: String) {
        clients.withLock { clients in
            guard clients?[address]?.client === client else { return }
            clients?[address]?.lastAnswer = .now
            clients?[address]?.silentTimeouts = 0
        }
    }

    /// Counts a timeout against `client`'s connection, and replaces the connection once it has
    /// been silent long enough.
    private func noteTimeout(on client: RequestClient, at address: String) {
        let now = ContinuousClock.now
        let replace = clients.withLock { clients -> Bool in
            guard var entry = clients?[address], entry.client === client else { return false }
            entry.silentTimeouts += 1
            guard entry.silentTimeouts >= Self.timeoutsBeforeReplacing,
                now - entry.lastAnswer >= Self.silenceBeforeReplacing
            else {
                clients?[address] = entry
                return false
            }
            clients?[address] = nil
            return true
        }
        guard replace else { return }
        replacements.add(1, ordering: .relaxed)
        client.close()
    }

    /// Applies the fault rules for the link to `address` to one frame. Dropped: the call fails at
    /// its deadline with the error of a request that got no answer. Delayed: the frame goes on after
    /// the delay, or the call fails the same way if that is past the deadline.
    private func passFaults(to address: String, deadline: ContinuousClock.Instant) async throws(TransportError) {
        guard let fault = faults.fault(to: address) else { return }
        let release: ContinuousClock.Instant
        switch fault {
        case .drop: release = deadline
        case .delay(let delay): release = .now + delay
        }
        // A cancelled task stops waiting early, as it stops waiting for a real request.
        try? await Task.sleep(until: min(release, deadline), clock: .continuous)
        if release >= deadline { throw TransportError.timedOut(operation: "request to \(address)") }
    }

    private func client(for address: String) throws -> RequestClient {
        try clients.withLock { clients in
            guard clients != nil else {
                throw TransportError(.closed, operation: "send to \(address)", message: "the node is shutting down")
            }
            if let known = clients?[address] {
                clients?[address]?.lastUsed = .now
                return known.client
            }
            var settings = RequestClientSettings()
            settings.maxMessageBytes = maxReplyBytes
            let made = try RequestClient(dial: address, settings: settings)
            clients?[address] = Entry(client: made, lastUsed: .now, lastAnswer: .now)
            return made
        }
    }

    /// Closes the clients of addresses not in `live` (peers that died, left or restarted on
    /// another port) once nothing used them for `idleBeforeClose`, so the pool does not grow
    /// with every restart and no request in flight (a hand-off, a snapshot fetch from a node
    /// that is leaving) is cut.
    func retain(only live: Set<String>) {
        let now = ContinuousClock.now
        let stale = clients.withLock { clients -> [RequestClient] in
            guard let current = clients else { return [] }
            let gone = current.filter { !live.contains($0.key) && now - $0.value.lastUsed > Self.idleBeforeClose }
            for address in gone.keys { clients?[address] = nil }
            return gone.values.map(\.client)
        }
        for client in stale { client.close() }
    }

    func closeAll() {
        let all = clients.withLock { clients -> [RequestClient] in
            defer { clients = nil }
            return clients.map { $0.values.map(\.client) } ?? []
        }
        for client in all { client.close() }
    }
}

/// A peer's reply could not be trusted.
struct PeerCallError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
