import Cluster
import Logging
import SwiftProtobuf
import Wire

/// The peer listener's side: only frames sealed with the cluster secret, fresh and not seen
/// before, are served (``PeerAuthenticator``); every answer is sealed as the reply to its
/// request. A refused frame gets an unsealed PERMISSION_DENIED (the sender cannot be trusted
/// with anything else), is counted, and is logged at most every 5 s per reason.
///
/// Authentication happens here and only here: a mutual-TLS transport would replace the MAC check
/// with the certificate's identity and leave the rest as it is.
///
/// The node's fault rules (partition drills) apply to every admitted frame by its sealed sender: a
/// frame from a node whose traffic is dropped gets no reply at all (its caller times out, as if the
/// frame had been lost), and a delayed node's request is served late and answered late (or, when
/// the delay outlasts the request's deadline, answered DEADLINE_EXCEEDED without being served). Admins'
/// frames (`admin-<random>` senders) are never affected, so a drill can always clear the rules.
final class PeerService: Sendable {
    private let handler: RequestHandler
    private let authenticator: PeerAuthenticator
    private let faults: FaultInjector
    private let logger: Logger
    private let refusalLog = RateLimiter(every: .seconds(5))

    init(handler: RequestHandler, authenticator: PeerAuthenticator, faults: FaultInjector, logger: Logger) {
        self.handler = handler
        self.authenticator = authenticator
        self.faults = faults
        self.logger = logger
    }

    /// The reply, and whether the frame vouches for its connection: only a frame that proved the
    /// secret does, so strangers' connections are the first to make room for new ones.
    func answer(_ bytes: [UInt8]) async -> RequestServer.Answer {
        let arrivedAt = ContinuousClock.now
        let opened: (header: SealHeader, body: ArraySlice<UInt8>)
        do throws(SealRefusal) {
            opened = try authenticator.admit(bytes, on: .request)
        } catch {
            if refusalLog.allow("\(error)") {
                // Past the MAC (stale, replayed), the sender is known: name it, since a node holding
                // the secret is the one to look at.
                let sender =
                    error == .stale || error == .replayed
                    ? (try? authenticator.seal.open(bytes, expecting: .request))?.header.sender ?? "?"
                    : "unauthenticated"
                logger.warning(
                    "refused a frame on the peer listener",
                    metadata: ["reason": "\(error)", "sender": "\(sender)", "bytes": "\(bytes.count)"])
            }
            return RequestServer.Answer(
                reply: Infranaut_V1_Response.error(.permissionDenied, "refused by the peer listener: \(error)").encoded,
                vouch: false)
        }
        let sender = opened.header.sender
        guard await passFaults(from: sender) else { return RequestServer.Answer(reply: nil, vouch: true) }
        // The frame's deadline counts from when it was sealed, so one that sat in a stalled
        // connection (or behind a delay rule) is dropped rather than served late.
        let response = await handler.handle(
            Array(opened.body), from: .peer(sender), arrivedAt: arrivedAt,
            transit: authenticator.transit(of: opened.header))
        // The reply crosses the same link (and a rule may have been set while the request was served).
        guard await passFaults(from: sender) else { return RequestServer.Answer(reply: nil, vouch: true) }
        return RequestServer.Answer(
            reply: authenticator.seal.seal(response.encoded, channel: .reply, replyingTo: opened.header).bytes,
            vouch: true)
    }

    /// Applies the fault rules for the link with `sender` to one frame: false when it is dropped;
    /// after the delay when it is delayed.
    private func passFaults(from sender: String) async -> Bool {
        switch faults.fault(from: sender) {
        case nil: return true
        case .drop: return false
        case .delay(let delay):
            try? await Task.sleep(for: delay)
            return true
        }
    }
}
