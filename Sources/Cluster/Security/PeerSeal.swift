import Crypto
import Foundation
import Synchronization

/// The cluster secret: every node of a cluster (and every admin command that changes it) holds
/// the same one. Peers prove it to each other with a MAC on every frame; the secret itself never
/// travels.
public struct ClusterSecret: Sendable {
    /// The key bytes (Crypto's `SymmetricKey` is not `Sendable` on every platform).
    let keyBytes: [UInt8]

    /// Shortest secret accepted, in bytes (after trimming surrounding whitespace).
    public static let minimumBytes = 16

    /// - Parameter source: where the secret came from, for the error message (a file path or an
    ///   environment variable's name; never the secret).
    public init(_ bytes: some Collection<UInt8>, source: String) throws(SecretError) {
        var trimmed = Array(bytes)
        while let last = trimmed.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 {
            trimmed.removeLast()
        }
        while let first = trimmed.first, first == 0x0A || first == 0x0D || first == 0x20 || first == 0x09 {
            trimmed.removeFirst()
        }
        guard trimmed.count >= Self.minimumBytes else {
            throw SecretError(
                "the cluster secret from \(source) has \(trimmed.count) bytes; it needs at least \(Self.minimumBytes)")
        }
        keyBytes = trimmed
    }

    /// Reads the secret from a file.
    public init(file path: String) throws(SecretError) {
        // POSIX calls, so that a failure says what to fix: "Permission denied", "No such file or
        // directory", "Is a directory".
        func unreadable() -> SecretError {
            SecretError("cannot read the cluster secret file \(path): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw unreadable() }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count == 0 { break }
            guard count > 0 else {
                if errno == EINTR { continue }
                throw unreadable()
            }
            bytes += chunk[..<count]
        }
        try self.init(bytes, source: path)
    }

    /// The secret given to a command: the file named, else the environment variable
    /// `INFRANAUT_CLUSTER_SECRET` (the secret itself); nil when neither is given.
    public static func given(file: String?) throws(SecretError) -> ClusterSecret? {
        if let file { return try ClusterSecret(file: file) }
        guard let value = ProcessInfo.processInfo.environment["INFRANAUT_CLUSTER_SECRET"] else { return nil }
        return try ClusterSecret(Array(value.utf8), source: "INFRANAUT_CLUSTER_SECRET")
    }

    /// Writes a new secret (32 random bytes as 64 hex characters, mode 0600) to `path` unless the
    /// file exists; true when it wrote one.
    @discardableResult
    public static func createFile(at path: String) throws(SecretError) -> Bool {
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        // Created with mode 0600 from the start (never readable by others, not even for a moment),
        // and only if no file is there (O_EXCL: one created meanwhile by another process is kept).
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST { return false }
            throw SecretError("cannot write a new cluster secret to \(path): \(String(cString: strerror(code)))")
        }
        let bytes = Array((secret + "\n").utf8)
        let written = write(fd, bytes, bytes.count)
        let failure =
            written == bytes.count
            ? nil : written < 0 ? String(cString: strerror(errno)) : "only \(written) bytes were written"
        close(fd)
        if let failure {
            unlink(path)  // a partial secret would only make the next start fail
            throw SecretError("cannot write a new cluster secret to \(path): \(failure)")
        }
        return true
    }
}

/// The cluster secret is missing or unusable.
public struct SecretError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a sealed frame carries besides its body: who sent it, and where it sits in the sender's
/// sequence of frames.
///
/// Frame layout (all integers big-endian):
/// ```
/// "INF1" | channel u8 | sender length u8 | sender (UTF-8) | boot u64 | counter u64 | sent ms u64
///        | reply-to boot u64 | reply-to counter u64 | HMAC-SHA256 (32 bytes) | body
/// ```
/// The MAC covers every byte before it and the body. `boot` identifies one run of the sender
/// (its start time in ns since 1970, so a later run has a larger boot); `counter` grows by one for
/// every frame the sender seals in that run. A reply names the request it answers (`replyTo`), so
/// a reply cannot be replayed as the answer to another request.
public struct SealHeader: Sendable, Equatable {
    public enum Channel: UInt8, Sendable {
        /// A request to a node's peer listener.
        case request = 1
        /// The answer to a request.
        case reply = 2
        /// A membership (SWIM) frame on the gossip listener.
        case gossip = 3
    }

    public var channel: Channel
    public var sender: String
    public var boot: UInt64
    public var counter: UInt64
    public var sentUnixMs: UInt64
    public var replyToBoot: UInt64 = 0
    public var replyToCounter: UInt64 = 0
}

/// Why a frame was refused. Each is counted by the receiver.
public enum SealRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a sealed frame at all (for example a client's plain request sent to the peer port).
    case notSealed
    /// The MAC does not verify: the sender does not hold this cluster's secret, or the frame was
    /// altered.
    case badMAC
    /// Sent on another channel than the one it arrived on.
    case wrongChannel
    /// The frame's time is further from this node's clock than the allowed skew, or older than this
    /// node's start.
    case stale
    /// A frame this node already accepted, or older than the window it remembers.
    case replayed

    public var description: String {
        switch self {
        case .notSealed: "the frame is not sealed with the cluster secret (is this a client talking to the peer port?)"
        case .badMAC: "the frame's MAC does not verify: the sender does not hold this cluster's secret"
        case .wrongChannel: "the frame was sealed for another channel"
        case .stale: "the frame's timestamp is outside the allowed clock skew (or before this node started)"
        case .replayed: "the frame was already received (a replay)"
        }
    }
}

/// Seals and opens peer frames with the cluster secret. Pure apart from the clock and the
/// counter it owns; the replay check is ``ReplayWindow``'s.
///
/// A later mutual-TLS transport slots in under this: the peer service asks a `PeerSeal` who sent
/// a frame, and with TLS the answer would come from the certificate instead of the MAC.
public final class PeerSeal: Sendable {
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    /// This side's identity: a node id, or `admin-<random>` for an admin command.
    public let sender: String
    private let boot: UInt64
    /// One counter per destination: a receiver's window then sees only the frames sent to it, so a
    /// slow frame (a large snapshot) can be overtaken only by frames to the same node, not by
    /// everything this node sends to the rest of the cluster meanwhile.
    private let counters = Mutex<[String: UInt64]>([:])

    static let magic: [UInt8] = Array("INF1".utf8)
    static let macBytes = 32
    static let fixedBytes = 4 + 1 + 1 + 8 * 5 + macBytes

    public init(secret: ClusterSecret, sender: String, boot: UInt64 = PeerSeal.wallClockNanoseconds()) {
        precondition(!sender.isEmpty && sender.utf8.count <= 255, "sender ids are 1...255 bytes")
        keyBytes = secret.keyBytes
        self.sender = sender
        self.boot = boot
    }

    public static func wallClockNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    public static func wallClockMilliseconds() -> UInt64 { wallClockNanoseconds() / 1_000_000 }

    /// Seals `body` as a new frame of `channel` for `destination` (the address it is sent to;
    /// replies need none); returns the frame and its header.
    public func seal(
        _ body: [UInt8], channel: SealHeader.Channel, to destination: String = "", replyingTo request: SealHeader? = nil
    ) -> (bytes: [UInt8], header: SealHeader) {
        // Never reset within a run (a receiver would take the restarted counters for replays); the
        // table grows by one entry per address this node ever sends to.
        let counter = counters.withLock { counters -> UInt64 in
            counters[destination, default: 0] += 1
            return counters[destination]!
        }
        let header = SealHeader(
            channel: channel, sender: sender, boot: boot, counter: counter,
            sentUnixMs: Self.wallClockMilliseconds(), replyToBoot: request?.boot ?? 0,
            replyToCounter: request?.counter ?? 0)
        var frame = Self.encode(header)
        let mac = Self.mac(header: frame[...], body: body[...], key: key)
        frame.append(contentsOf: mac)
        frame.append(contentsOf: body)
        return (frame, header)
    }

    /// Bytes before the body of a frame that looks sealed (before any check); 0 otherwise.
    public static func headerBytes(of bytes: [UInt8]) -> Int {
        guard isSealed(bytes) else { return 0 }
        return min(bytes.count, 6 + Int(bytes[5]) + 40 + macBytes)
    }

    /// Whether `bytes` look like a sealed frame (before any check).
    public static func isSealed(_ bytes: [UInt8]) -> Bool { bytes.count >= fixedBytes && bytes.starts(with: magic) }

    /// Checks the MAC and the channel; returns the header and body. Freshness and replays are the
    /// caller's ``ReplayWindow``'s to judge.
    public func open(_ bytes: [UInt8], expecting channel: SealHeader.Channel) throws(SealRefusal) -> (
        header: SealHeader, body: ArraySlice<UInt8>
    ) {
        guard Self.isSealed(bytes) else { throw .notSealed }
        let senderLength = Int(bytes[5])
        let headerEnd = 6 + senderLength + 40
        guard senderLength > 0, bytes.count >= headerEnd + Self.macBytes,
            let sender = String(validating: bytes[6..<(6 + senderLength)], as: UTF8.self)
        else { throw .notSealed }
        let mac = bytes[headerEnd..<(headerEnd + Self.macBytes)]
        let body = bytes[(headerEnd + Self.macBytes)...]
        guard Self.constantTimeEqual(Self.mac(header: bytes[..<headerEnd], body: body, key: key), mac) else {
            throw .badMAC
        }
        guard let kind = SealHeader.Channel(rawValue: bytes[4]), kind == channel else { throw .wrongChannel }
        var offset = 6 + senderLength
        func next() -> UInt64 {
            defer { offset += 8 }
            return bytes[offset..<(offset + 8)].reduce(0) { $0 << 8 | UInt64($1) }
        }
        let header = SealHeader(
            channel: kind, sender: sender, boot: next(), counter: next(), sentUnixMs: next(), replyToBoot: next(),
            replyToCounter: next())
        return (header, body)
    }

    /// HMAC-SHA256 over the header then the body, fed in place (a batch is not copied to be hashed).
    private static func mac(header: ArraySlice<UInt8>, body: ArraySlice<UInt8>, key: SymmetricKey) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: header)
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// Opens the reply to `request`: it must be a reply frame naming that request.
    public func openReply(_ bytes: [UInt8], to request: SealHeader) throws(SealRefusal) -> (
        header: SealHeader, body: ArraySlice<UInt8>
    ) {
        let (header, body) = try open(bytes, expecting: .reply)
        guard header.replyToBoot == request.boot, header.replyToCounter == request.counter else { throw .replayed }
        return (header, body)
    }

    private static func encode(_ header: SealHeader) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(fixedBytes + header.sender.utf8.count)
        bytes.append(header.channel.rawValue)
        bytes.append(UInt8(header.sender.utf8.count))
        bytes.append(contentsOf: header.sender.utf8)
        for value in [header.boot, header.counter, header.sentUnixMs, header.replyToBoot, header.replyToCounter] {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}
