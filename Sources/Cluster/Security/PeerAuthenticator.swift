import Synchronization

/// Refused frames by reason, since the node started.
public struct RefusalCounts: Sendable, Equatable {
    public var notSealed: UInt64 = 0
    public var badMAC: UInt64 = 0
    public var wrongChannel: UInt64 = 0
    public var stale: UInt64 = 0
    public var replayed: UInt64 = 0

    public init() {}

    public var total: UInt64 { notSealed + badMAC + wrongChannel + stale + replayed }

    mutating func count(_ refusal: SealRefusal) {
        switch refusal {
        case .notSealed: notSealed += 1
        case .badMAC: badMAC += 1
        case .wrongChannel: wrongChannel += 1
        case .stale: stale += 1
        case .replayed: replayed += 1
        }
    }
}

/// A node's side of peer authentication: seals what it sends, and admits what it receives only
/// when the MAC verifies and the frame is fresh (``ReplayWindow``). Shared by the peer listener
/// (requests), the gossip listener (SWIM frames) and the peer clients (replies).
public final class PeerAuthenticator: Sendable {
    public let seal: PeerSeal
    private let windows: Mutex<[SealHeader.Channel: ReplayWindow]>
    private let refusals = Mutex(RefusalCounts())
    private let clocks = Mutex(PeerClock())

    public init(seal: PeerSeal, settings: ReplayWindow.Settings = .init()) {
        self.seal = seal
        let started = PeerSeal.wallClockMilliseconds()
        // One counter per sender across channels, but a window per channel, so a burst of
        // requests cannot push gossip frames that are still in flight out of the window.
        windows = Mutex([
            .request: ReplayWindow(settings: settings, startedUnixMs: started),
            .gossip: ReplayWindow(settings: settings, startedUnixMs: started),
        ])
    }

    /// Opens a frame that arrived on `channel` (`.request` or `.gossip`) and checks that it is new.
    /// Every refusal is counted.
    public func admit(_ bytes: [UInt8], on channel: SealHeader.Channel) throws(SealRefusal) -> (
        header: SealHeader, body: ArraySlice<UInt8>
    ) {
        do throws(SealRefusal) {
            let opened = try seal.open(bytes, expecting: channel)
            let now = PeerSeal.wallClockMilliseconds()
            try windows.withLock { windows throws(SealRefusal) in
                try windows[channel]?.admit(opened.header, nowUnixMs: now)
            }
            return opened
        } catch {
            refusals.withLock { $0.count(error) }
            throw error
        }
    }

    /// Counts a refusal found elsewhere (a reply that does not verify).
    public func count(_ refusal: SealRefusal) { refusals.withLock { $0.count(refusal) } }

    public var refusalCounts: RefusalCounts { refusals.withLock { $0 } }

    /// Learns `reply.sender`'s clock from one exchange (see ``PeerClock``): the request was sent
    /// at `requestSentMs` and the reply arrived at `receivedMs`, both by this node's clock.
    public func noteReply(_ reply: SealHeader, requestSentMs: UInt64, receivedMs: UInt64) {
        clocks.withLock {
            $0.record(
                peer: reply.sender, requestSentMs: requestSentMs, replySealedMs: reply.sentUnixMs,
                replyReceivedMs: receivedMs)
        }
    }

    /// How long the admitted frame `header` was under way before it arrived now; zero when this
    /// node does not know the sender's clock (an admin command, a peer it has not called lately).
    public func transit(of header: SealHeader) -> Duration {
        let now = PeerSeal.wallClockMilliseconds()
        return clocks.withLock { $0.transit(sender: header.sender, sentMs: header.sentUnixMs, nowMs: now) } ?? .zero
    }

    /// Forgets senders whose frames are all too old to replay anyway.
    public func prune() {
        let now = PeerSeal.wallClockMilliseconds()
        windows.withLock { windows in
            for channel in Array(windows.keys) { windows[channel]?.forget(olderThan: now) }
        }
    }
}
