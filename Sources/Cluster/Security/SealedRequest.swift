/// What a sealed request got back.
public enum SealedReply: Sendable {
    /// The body of the reply sealed for this request, and the reply's header (who sealed it, and
    /// when by its clock).
    case sealed([UInt8], header: SealHeader)
    /// An unsealed answer: the peer refused the frame (it cannot seal for a sender it does not
    /// trust, so its refusal travels in the clear). The caller decides what to believe of it.
    case unsealed([UInt8])
}

extension RequestClient {
    /// Sends `body` sealed with `seal` for this client's address and opens the reply, which must be
    /// sealed as the answer to this very request; throws ``SealRefusal`` when it is sealed but not
    /// that (another request's answer, another secret).
    public func sealedRequest(_ body: [UInt8], seal: PeerSeal, timeout: Duration) async throws -> SealedReply {
        let (frame, header) = seal.seal(body, channel: .request, to: address)
        let reply = try await request(frame, timeout: timeout)
        do throws(SealRefusal) {
            let opened = try seal.openReply(reply, to: header)
            return .sealed(Array(opened.body), header: opened.header)
        } catch {
            guard error == .notSealed else { throw error }
            return .unsealed(reply)
        }
    }
}
