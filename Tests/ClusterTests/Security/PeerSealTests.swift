import Testing

@testable import Cluster

private let secret = try! ClusterSecret(Array("a-cluster-secret-for-tests".utf8), source: "test")

private func header(_ sender: String = "n1", boot: UInt64 = 1, counter: UInt64, sent: UInt64 = 1_000_000) -> SealHeader
{
    SealHeader(channel: .request, sender: sender, boot: boot, counter: counter, sentUnixMs: sent)
}

@Suite("peer seal and replay window")
struct PeerSealTests {
    @Test("a sealed frame opens with the same secret and names its sender; any changed byte or another secret fails")
    func sealAndOpen() throws {
        let seal = PeerSeal(secret: secret, sender: "node-a")
        let body: [UInt8] = Array("hello peers".utf8)
        let (frame, sent) = seal.seal(body, channel: .request)
        let opened = try seal.open(frame, expecting: .request)
        #expect(opened.header == sent)
        #expect(Array(opened.body) == body)
        #expect(throws: SealRefusal.wrongChannel) { try seal.open(frame, expecting: .gossip) }
        for index in stride(from: 0, to: frame.count, by: 7) where index >= 4 {
            var altered = frame
            altered[index] ^= 0x01
            #expect(throws: SealRefusal.self) { try seal.open(altered, expecting: .request) }
        }
        let stranger = PeerSeal(
            secret: try ClusterSecret(Array("another-secret-entirely".utf8), source: "test"), sender: "node-a")
        #expect(throws: SealRefusal.badMAC) { try stranger.open(frame, expecting: .request) }
        #expect(throws: SealRefusal.notSealed) { try seal.open(body, expecting: .request) }
    }

    @Test("a reply opens only as the answer to its own request")
    func replyBinding() throws {
        let a = PeerSeal(secret: secret, sender: "a")
        let b = PeerSeal(secret: secret, sender: "b")
        let (_, first) = a.seal([1], channel: .request)
        let (_, second) = a.seal([2], channel: .request)
        let (reply, _) = b.seal([3], channel: .reply, replyingTo: first)
        #expect(Array(try a.openReply(reply, to: first).body) == [3])
        #expect(throws: SealRefusal.self) { try a.openReply(reply, to: second) }
    }

    @Test(
        "counters are per destination: a frame held back while thousands go to other nodes is still accepted where it goes"
    )
    func perDestinationCounters() throws {
        let seal = PeerSeal(secret: secret, sender: "s")
        let (slow, header) = seal.seal([1], channel: .request, to: "tcp://b")
        for _ in 0..<10_000 { _ = seal.seal([2], channel: .request, to: "tcp://c") }
        let (next, _) = seal.seal([3], channel: .request, to: "tcp://b")
        #expect(header.counter == 1)
        var window = ReplayWindow(startedUnixMs: 0)
        let now = header.sentUnixMs
        try window.admit(try seal.open(next, expecting: .request).header, nowUnixMs: now)
        try window.admit(try seal.open(slow, expecting: .request).header, nowUnixMs: now)
    }

    @Test("secrets shorter than 16 bytes are refused; surrounding whitespace is not part of the secret")
    func secretRules() throws {
        #expect(throws: SecretError.self) { try ClusterSecret(Array("short".utf8), source: "test") }
        let padded = try ClusterSecret(Array("  a-cluster-secret-for-tests\n".utf8), source: "test")
        let seal = PeerSeal(secret: secret, sender: "x")
        let (frame, _) = seal.seal([9], channel: .gossip)
        #expect(throws: Never.self) { try PeerSeal(secret: padded, sender: "y").open(frame, expecting: .gossip) }
    }

    @Test("each frame is accepted once, in any order within the window; older ones are refused")
    func replays() throws {
        var window = ReplayWindow(startedUnixMs: 0)
        let now: UInt64 = 1_000_000
        for counter: UInt64 in [5, 3, 4, 1, 2, 100, 50] {
            try window.admit(header(counter: counter), nowUnixMs: now)
        }
        for counter: UInt64 in [5, 3, 1, 100, 50] {
            #expect(throws: SealRefusal.replayed) { try window.admit(header(counter: counter), nowUnixMs: now) }
        }
        // Far ahead: everything more than the window behind is refused, even if never seen.
        try window.admit(header(counter: 10_000), nowUnixMs: now)
        #expect(throws: SealRefusal.replayed) { try window.admit(header(counter: 10_000 - 4_096), nowUnixMs: now) }
        try window.admit(header(counter: 10_000 - 4_095), nowUnixMs: now)
        // Other senders have their own windows.
        try window.admit(header("n2", counter: 5), nowUnixMs: now)
    }

    @Test("a new boot of a sender replaces its window; frames of an earlier boot are refused")
    func boots() throws {
        var window = ReplayWindow(startedUnixMs: 0)
        try window.admit(header(boot: 10, counter: 7), nowUnixMs: 1_000_000)
        try window.admit(header(boot: 20, counter: 1), nowUnixMs: 1_000_000)
        #expect(throws: SealRefusal.replayed) { try window.admit(header(boot: 10, counter: 8), nowUnixMs: 1_000_000) }
        try window.admit(header(boot: 20, counter: 2), nowUnixMs: 1_000_000)
    }

    @Test("frames outside the clock skew, or sent before the receiver started, are stale")
    func freshness() throws {
        var window = ReplayWindow(startedUnixMs: 500_000)
        #expect(throws: SealRefusal.stale) { try window.admit(header(counter: 1, sent: 499_999), nowUnixMs: 510_000) }
        #expect(throws: SealRefusal.stale) { try window.admit(header(counter: 2, sent: 600_000), nowUnixMs: 560_000) }
        // Ahead of the receiver's clock: at most 5 s.
        #expect(throws: SealRefusal.stale) { try window.admit(header(counter: 5, sent: 566_000), nowUnixMs: 560_000) }
        try window.admit(header(counter: 6, sent: 564_000), nowUnixMs: 560_000)
        #expect(throws: SealRefusal.stale) { try window.admit(header(counter: 3, sent: 510_000), nowUnixMs: 550_000) }
        try window.admit(header(counter: 4, sent: 530_000), nowUnixMs: 550_000)
    }

    @Test("a sender is forgotten only when every frame it sent is too old to pass the freshness check")
    func forgetting() throws {
        var window = ReplayWindow(startedUnixMs: 0)
        try window.admit(header(counter: 1, sent: 100_000), nowUnixMs: 100_000)
        window.forget(olderThan: 129_000)
        #expect(window.rememberedSenders == 1)
        window.forget(olderThan: 131_000)
        #expect(window.rememberedSenders == 0)
        // The forgotten frame cannot come back: it is stale now.
        #expect(throws: SealRefusal.stale) { try window.admit(header(counter: 1, sent: 100_000), nowUnixMs: 131_000) }
    }

    @Test("the sender table is bounded")
    func bounded() throws {
        var settings = ReplayWindow.Settings()
        settings.maxSenders = 8
        var window = ReplayWindow(settings: settings, startedUnixMs: 0)
        for sender in 0..<8 { try window.admit(header("s\(sender)", counter: 1), nowUnixMs: 1_000_000) }
        #expect(throws: SealRefusal.stale) { try window.admit(header("s9", counter: 1), nowUnixMs: 1_000_000) }
        #expect(window.rememberedSenders == 8)
        // Once the old senders are too old to replay anything, a new one gets their place.
        try window.admit(header("s9", counter: 1, sent: 1_100_000), nowUnixMs: 1_100_000)
    }
}
