import Synchronization

/// Lets an action through at most once per interval per key: log lines about refused requests
/// must not become a way to flood the log. Remembers at most 1,024 keys (then starts over).
final class RateLimiter: Sendable {
    private let interval: Duration
    private let last = Mutex<[String: ContinuousClock.Instant]>([:])

    init(every interval: Duration) { self.interval = interval }

    func allow(_ key: String) -> Bool {
        let now = ContinuousClock.now
        return last.withLock { last in
            if let previous = last[key], now - previous < interval { return false }
            if last.count >= 1_024 { last.removeAll(keepingCapacity: true) }
            last[key] = now
            return true
        }
    }
}

extension String {
    /// At most 120 characters of the string with control characters escaped: for text that came
    /// from an unauthenticated sender and goes into a log line.
    var printableForLog: String {
        var out = ""
        for scalar in unicodeScalars.prefix(120) {
            if scalar.properties.generalCategory == .control {
                out += scalar.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return unicodeScalars.count > 120 ? out + "…" : out
    }
}
