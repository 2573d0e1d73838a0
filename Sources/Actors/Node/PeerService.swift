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
final class PeerService: Sendable {
    private let handler: RequestHandler
    private let authenticator: PeerAuthenticator
    private let logger: Logger
    private let refusalLog = RateLimiter(every: .seconds(5))

    init(handler: RequestHandler, authenticator: PeerAuthenticator, logger: Logger) {
        self.handler = handler
        self.authenticator = authenticator
        self.logger = logger
    }

    /// The reply, and whether the frame vouches for its connection: only a frame that proved the
    /// secret does, so strangers' connections are the first to make room for new ones.
    func answer(_ bytes: [UInt8]) async -> RequestServer.Answer {
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
        let response = await handler.handle(Array(opened.body), from: .peer(opened.header.sender))
        return RequestServer.Answer(
            reply: authenticator.seal.seal(response.encoded, channel: .reply, replyingTo: opened.header).bytes,
            vouch: true)
    }
}
