/// Pending membership updates and how often each has been piggybacked.
///
/// Holds at most one update per member (a newer one replaces the older and restarts its count).
/// `take` hands out the least-transmitted updates first and forgets an update once it has been
/// sent `limit` times, which is SWIM's `λ log n` dissemination.
struct GossipQueue: Sendable {
    private struct Entry: Sendable {
        var update: MemberUpdate
        var transmits: Int
        var order: UInt64
    }

    private var entries: [NodeID: Entry] = [:]
    private var nextOrder: UInt64 = 0

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }

    /// Queues `update`, replacing any pending update about the same member.
    mutating func enqueue(_ update: MemberUpdate) {
        entries[update.id] = Entry(update: update, transmits: 0, order: nextOrder)
        nextOrder &+= 1
    }

    /// The pending update about `id`, if any.
    func pending(for id: NodeID) -> MemberUpdate? {
        entries[id]?.update
    }

    /// Up to `maxCount` updates, least transmitted (then oldest) first; each handed-out update
    /// counts one transmission and is dropped after `limit` transmissions.
    mutating func take(maxCount: Int, limit: Int, excluding excluded: NodeID? = nil) -> [MemberUpdate] {
        guard maxCount > 0, !entries.isEmpty else { return [] }
        var chosen: [Entry] = []
        chosen.reserveCapacity(maxCount)
        // Partial selection: keep the best `maxCount` entries seen so far, sorted.
        for entry in entries.values where entry.update.id != excluded {
            if chosen.count == maxCount, let worst = chosen.last, !Self.precedes(entry, worst) { continue }
            let index = chosen.firstIndex { Self.precedes(entry, $0) } ?? chosen.count
            chosen.insert(entry, at: index)
            if chosen.count > maxCount { chosen.removeLast() }
        }
        for entry in chosen {
            let id = entry.update.id
            guard var stored = entries[id] else { continue }
            stored.transmits += 1
            entries[id] = stored.transmits >= limit ? nil : stored
        }
        return chosen.map(\.update)
    }

    private static func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.transmits != b.transmits ? a.transmits < b.transmits : a.order < b.order
    }
}
