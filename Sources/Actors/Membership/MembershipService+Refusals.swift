import Cluster
import Logging
import Wire

/// Gossip that is refused: frames not sealed with this cluster's secret, and frames of nodes of
/// another cluster shape. Neither changes membership; both are logged (rate-limited) and the
/// sender is told why, so a misconfigured node can say what to fix.
extension MembershipService {
    /// A gossip frame that is not sealed with this cluster's secret changes nothing. It is logged
    /// (at most every 5 s per reason), and the sender it names hears why (at most every 5 s per
    /// address), so a node started with another secret can say why it cannot join. An unsealed
    /// refusal from another node is only logged.
    func refused(_ bytes: [UInt8], _ refusal: SealRefusal) {
        // Unauthenticated bytes are parsed only when small: a join and a refusal notice are a few
        // hundred bytes, and parsing a 1 MB frame (in the membership actor, before any rate limit)
        // let a flood of them delay real gossip until peers declared this node dead.
        let frame: Infranaut_V1_ClusterMessage?
        if bytes.count > Self.maxUnauthenticatedParse {
            frame = nil
        } else if refusal == .badMAC,
            let opened = try? Infranaut_V1_ClusterMessage(
                serializedBytes: Array(bytes.dropFirst(PeerSeal.headerBytes(of: bytes))))
        {
            frame = opened
        } else {
            frame = try? Infranaut_V1_ClusterMessage(serializedBytes: bytes)
        }
        if refusal == .notSealed, case .refusal(let notice)? = frame?.body {
            // Unauthenticated text: logged at most every 5 s in all, cut short, control characters
            // escaped, so a flood of notices can neither fill the log nor forge lines in it.
            if unsealedLog.allow("notice") {
                logger.error(
                    "a node refused this node's gossip: check that every node has the same cluster secret (--cluster-secret-file)",
                    metadata: [
                        "by": "\(notice.fromAddress.printableForLog)", "reason": "\(notice.reason.printableForLog)",
                    ])
            }
            return
        }
        if refusalLog.allow("refused \(refusal)") {
            logger.warning("refused a gossip frame", metadata: ["reason": "\(refusal)", "bytes": "\(bytes.count)"])
        }
        guard refusal == .badMAC, case .swim(let swim)? = frame?.body, !swim.sender.address.isEmpty,
            swim.sender.address != address, swim.sender.address.utf8.count <= 256,
            refusalLog.allow("notify \(swim.sender.address)"), noticesSent.allow("any")
        else { return }
        // The sender does not hold this cluster's secret: the notice goes unsealed.
        sendNotice("\(refusal)", to: swim.sender.address, sealed: false)
    }

    /// A sealed frame from a node of another shape changes nothing; the sender hears why (at most
    /// every 5 s per address), sealed, so it can log the reason and the flags that fix it.
    func refuseShape(of sender: String, reason: String) {
        guard refusalLog.allow("shape \(sender)") else { return }
        logger.warning("refused gossip from a node of another cluster shape", metadata: ["reason": "\(reason)"])
        guard !sender.isEmpty, sender != address, sender.utf8.count <= 256, noticesSent.allow("any") else { return }
        sendNotice(reason, to: sender, sealed: true)
    }

    /// Tells `recipient` why its gossip is refused, without waiting: one message, dropped if it
    /// does not leave within 500 ms.
    private func sendNotice(_ reason: String, to recipient: String, sealed: Bool) {
        let notice = Infranaut_V1_ClusterMessage.with {
            $0.version = 1
            $0.shape = settings.placement.shape
            $0.refusal = .with {
                $0.fromAddress = address
                $0.reason = reason
            }
        }
        guard let body: [UInt8] = try? notice.serializedBytes(), let mailbox = try? MailboxSender(dial: recipient)
        else {
            return
        }
        let bytes = sealed ? authenticator.seal.seal(body, channel: .gossip, to: recipient).bytes : body
        // The completion keeps the sender alive until the notice left (or timed out).
        mailbox.post(bytes, timeout: .milliseconds(500)) { _ in mailbox.close() }
    }
}
