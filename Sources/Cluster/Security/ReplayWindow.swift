/// Decides whether an authenticated frame is fresh: not sent too far from this node's clock, not
/// sent before this node started, and not seen before.
///
/// Invariants (each has a test in `ReplayWindowTests`):
/// 1. A frame is accepted at most once: per sender, the window remembers every counter of the
///    sender's current boot from `highest - windowSize + 1` to `highest`, and refuses anything
///    older, anything already seen, and any earlier boot.
/// 2. A frame sent before this node started is refused, so restarting the receiver (which forgets
///    the window) does not reopen old frames to replay.
/// 3. A sender is forgotten only once every frame it had sent is older than the allowed skew, so
///    forgetting cannot let a seen frame back in: freshness refuses it first.
/// 4. Memory is bounded: `windowSize / 8` bytes per remembered sender, at most `maxSenders`
///    senders (only holders of the secret get here, since the MAC is checked first).
///
/// Frames of one sender may arrive out of order (requests are sent on many contexts at once);
/// any order within the window is accepted.
public struct ReplayWindow: Sendable {
    public struct Settings: Sendable {
        /// How old a frame may be by this node's clock (its age in flight plus clock skew). Default 30 s.
        public var maxSkewMs: UInt64 = 30_000
        /// How far ahead of this node's clock a frame's timestamp may be. Kept small: a frame dated
        /// ahead is still fresh after this node restarts (and forgets its windows), so a captured
        /// one could be replayed once within this much of a restart. Default 5 s.
        public var maxFutureMs: UInt64 = 5_000
        /// Counters remembered per sender. Default 4,096 (512 bytes).
        public var windowSize = 4_096
        /// Senders remembered at once. Default 65,536.
        public var maxSenders = 65_536

        public init() {}
    }

    private struct SenderState {
        var boot: UInt64
        var highest: UInt64
        /// Bit `i` set: counter `highest - i` was seen.
        var seen: [UInt64]
        var newestSentMs: UInt64
    }

    public let settings: Settings
    /// Frames sent before this time (ms since 1970) are refused.
    public let startedUnixMs: UInt64
    private var senders: [String: SenderState] = [:]

    public init(settings: Settings = Settings(), startedUnixMs: UInt64) {
        self.settings = settings
        self.startedUnixMs = startedUnixMs
    }

    public var rememberedSenders: Int { senders.count }

    /// Accepts the frame (and remembers it) or says why not.
    public mutating func admit(_ header: SealHeader, nowUnixMs now: UInt64) throws(SealRefusal) {
        let sent = header.sentUnixMs
        guard sent + settings.maxSkewMs >= now, sent <= now + settings.maxFutureMs, sent >= startedUnixMs else {
            throw .stale
        }
        let words = (settings.windowSize + 63) / 64
        guard var state = senders[header.sender], state.boot >= header.boot else {
            // A new sender, or a new run of a known one.
            if senders[header.sender] == nil && senders.count >= settings.maxSenders { forget(olderThan: now) }
            guard senders[header.sender] != nil || senders.count < settings.maxSenders else { throw .stale }
            var seen = [UInt64](repeating: 0, count: words)
            seen[0] = 1
            senders[header.sender] = SenderState(
                boot: header.boot, highest: header.counter, seen: seen, newestSentMs: sent)
            return
        }
        guard state.boot == header.boot else { throw .replayed }
        if header.counter > state.highest {
            Self.shift(&state.seen, by: header.counter - state.highest)
            state.highest = header.counter
            state.seen[0] |= 1
        } else {
            let age = state.highest - header.counter
            guard age < UInt64(words * 64) else { throw .replayed }
            let (word, bit) = (Int(age / 64), age % 64)
            guard state.seen[word] & (1 << bit) == 0 else { throw .replayed }
            state.seen[word] |= 1 << bit
        }
        state.newestSentMs = max(state.newestSentMs, sent)
        senders[header.sender] = state
    }

    /// Forgets senders whose every frame is older than the allowed skew (invariant 3).
    public mutating func forget(olderThan now: UInt64) {
        senders = senders.filter { $0.value.newestSentMs + settings.maxSkewMs >= now }
    }

    /// Shifts the bitmap towards older counters by `distance` bits.
    private static func shift(_ seen: inout [UInt64], by distance: UInt64) {
        let total = UInt64(seen.count * 64)
        guard distance < total else {
            for index in seen.indices { seen[index] = 0 }
            return
        }
        let words = Int(distance / 64)
        let bits = distance % 64
        for index in stride(from: seen.count - 1, through: 0, by: -1) {
            let source = index - words
            var value: UInt64 = source >= 0 ? seen[source] << bits : 0
            if bits > 0, source - 1 >= 0 { value |= seen[source - 1] >> (64 - bits) }
            seen[index] = value
        }
    }
}
