import Wire

/// The idempotency keys a shard remembers, with the outcome of the op each was applied in, and
/// their expiry order. A key is remembered in the same step as its op is applied (and installed
/// with it from a snapshot), so a snapshot or a status never holds an op without its key.
struct IdempotencyTable {
    struct Key: Hashable {
        var model: String
        var key: String
    }

    private var records: [Key: Infranaut_V1_IdempotencyRecord] = [:]
    /// Keys by acceptance time, oldest first; entries before `head` have expired.
    private var order: [(key: Key, acceptedMs: Int64)] = []
    private var head = 0
    /// Keys remembered and forgotten since the last ``takeChanges()``: what the next checkpoint
    /// writes and deletes.
    private var added: [Key] = []
    private var expired: [Key] = []

    /// A table of `entries` (from recovery or a snapshot), in any order.
    init(_ entries: [(model: String, key: String, record: Infranaut_V1_IdempotencyRecord)] = []) {
        for entry in entries.sorted(by: { $0.record.acceptedUnixMs < $1.record.acceptedUnixMs }) {
            remember(Key(model: entry.model, key: entry.key), entry.record)
        }
    }

    subscript(key: Key) -> Infranaut_V1_IdempotencyRecord? { records[key] }

    var count: Int { records.count }

    mutating func remember(_ key: Key, _ record: Infranaut_V1_IdempotencyRecord) {
        records[key] = record
        order.append((key, record.acceptedUnixMs))
        added.append(key)
    }

    /// The keys remembered (with their records, when still remembered) and forgotten since the
    /// last call.
    mutating func takeChanges() -> (remembered: [(Key, Infranaut_V1_IdempotencyRecord)], forgotten: [Key]) {
        defer {
            added = []
            expired = []
        }
        return (added.compactMap { key in records[key].map { (key, $0) } }, expired.filter { records[$0] == nil })
    }

    /// Forgets every key accepted before `cutoffMs` and returns them (their durable records are
    /// deleted in the caller's checkpoint batch).
    mutating func expire(acceptedBefore cutoffMs: Int64) -> [Key] {
        var expiredNow: [Key] = []
        while head < order.count, order[head].acceptedMs < cutoffMs {
            let key = order[head].key
            records[key] = nil
            expiredNow.append(key)
            head += 1
        }
        if head > 4_096 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        expired += expiredNow
        return expiredNow
    }
}
