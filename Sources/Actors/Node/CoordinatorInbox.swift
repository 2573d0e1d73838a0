import Wire

/// The events a coordinator received, newest kept: bounded by count and by payload bytes, oldest
/// dropped first. A known id is answered as a duplicate for as long as it is kept, so delivery
/// retries are stored once.
///
/// Events of the *retained* kinds (channels and silences: what people configured) are kept apart,
/// each kind in a tier of its own with its own count cap, so neither the stream of alert changes
/// and notification records nor a flood of silences pushes a channel out: a coordinator that
/// restarts after a busy month still knows its channels (docs/alerting.md, "Coordinators that
/// join or restart"). Of a retained object (`kind/name/...` ids) only the newest version is kept,
/// by the event's creation time, so re-applying a channel every few minutes does not fill a tier.
struct CoordinatorInbox {
    let capacity: Int
    let maxBytes: Int
    /// Kinds kept in tiers of their own, and how many of each are kept.
    let retainedKinds: Set<String>
    let retainedCapacity: Int

    private var events: [String: Infranaut_V1_ReceivedEvent] = [:]
    private var common = Tier()
    private var retained: [String: Tier] = [:]
    /// Per retained object (`kind/name`): the id of its newest version kept.
    private var newestVersion: [String: String] = [:]
    /// Payload bytes of the common kinds (the retained tiers are bounded by their counts).
    private var bytes = 0
    /// Stored events to delete: those that did not fit the caps at load, and older versions of a
    /// retained object.
    private var pendingDeletes: [String] = []
    /// Events received since the inbox was created, kept or not (for `events`).
    private(set) var receivedTotal: UInt64 = 0

    /// Ids by arrival, oldest first; entries before `head` were dropped. An id whose event is gone
    /// (an older version replaced) stays in `order` but not in `kept`.
    private struct Tier {
        var order: [String] = []
        var head = 0
        var kept = 0
    }

    init(
        loading received: [Infranaut_V1_ReceivedEvent], capacity: Int, maxBytes: Int, retainedKinds: Set<String> = [],
        retainedCapacity: Int = 10_000
    ) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        self.retainedKinds = retainedKinds
        self.retainedCapacity = retainedCapacity
        // Oldest first, so that every cap keeps the newest run (trim drops from the front).
        for event in received.sorted(by: { ($0.receivedUnixMs, $0.event.id) < ($1.receivedUnixMs, $1.event.id) }) {
            add(event)
        }
        receivedTotal = UInt64(received.count)
        trimCaps()
    }

    func contains(_ id: String) -> Bool { events[id] != nil }

    mutating func insert(_ event: Infranaut_V1_ReceivedEvent) {
        add(event)
        receivedTotal += 1
    }

    /// `kind/name` of a retained object's event id (`channel/ops/1764…/n1` → `channel/ops`).
    static func objectKey(_ id: String) -> String {
        let parts = id.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.prefix(2).joined(separator: "/")
    }

    private mutating func add(_ event: Infranaut_V1_ReceivedEvent) {
        let id = event.event.id
        guard events[id] == nil else { return }
        guard retainedKinds.contains(event.event.kind) else {
            events[id] = event
            common.order.append(id)
            common.kept += 1
            bytes += event.event.payload.count
            return
        }
        let key = Self.objectKey(id)
        if let known = newestVersion[key], let kept = events[known] {
            let newer = (event.event.createdUnixMs, id) > (kept.event.createdUnixMs, known)
            // The older of the two goes (also from disk).
            pendingDeletes.append(newer ? known : id)
            guard newer else { return }
            events[known] = nil
            retained[kept.event.kind, default: Tier()].kept -= 1
        }
        newestVersion[key] = id
        events[id] = event
        retained[event.event.kind, default: Tier()].order.append(id)
        retained[event.event.kind, default: Tier()].kept += 1
    }

    /// Drops the oldest events of each tier until its caps hold; returns every id whose stored
    /// record is to be deleted.
    mutating func trim() -> [String] {
        trimCaps()
        defer { pendingDeletes = [] }
        return pendingDeletes
    }

    private mutating func trimCaps() {
        while common.kept > capacity || bytes > maxBytes, common.head < common.order.count {
            let id = common.order[common.head]
            common.head += 1
            guard let event = events.removeValue(forKey: id) else { continue }
            bytes -= event.event.payload.count
            common.kept -= 1
            pendingDeletes.append(id)
        }
        compact(&common)
        for kind in retained.keys.sorted() {
            var tier = retained[kind]!
            while tier.kept > retainedCapacity, tier.head < tier.order.count {
                let id = tier.order[tier.head]
                tier.head += 1
                guard events.removeValue(forKey: id) != nil else { continue }
                tier.kept -= 1
                if newestVersion[Self.objectKey(id)] == id { newestVersion[Self.objectKey(id)] = nil }
                pendingDeletes.append(id)
            }
            compact(&tier)
            retained[kind] = tier
        }
    }

    private func compact(_ tier: inout Tier) {
        guard tier.head > 4_096 else { return }
        tier.order.removeFirst(tier.head)
        tier.head = 0
    }

    /// Up to `limit` of the newest events (of `kinds`, or every kind when it is empty), oldest
    /// first, whose payloads (plus 256 bytes each) fit `maxBytes`.
    func newest(limit: Int, maxBytes: Int, kinds: Set<String> = []) -> [Infranaut_V1_ReceivedEvent] {
        func newestFirst(_ tier: Tier) -> [Infranaut_V1_ReceivedEvent] {
            var found: [Infranaut_V1_ReceivedEvent] = []
            for id in tier.order[tier.head...].reversed() {
                if found.count >= limit { break }
                guard let event = events[id], kinds.isEmpty || kinds.contains(event.event.kind) else { continue }
                found.append(event)
            }
            return found
        }
        var tiers: [Tier] = []
        if kinds.isEmpty || !kinds.isSubset(of: retainedKinds) { tiers.append(common) }
        for (kind, tier) in retained where kinds.isEmpty || kinds.contains(kind) { tiers.append(tier) }
        // The tiers newest first, merged by arrival.
        let merged = tiers.flatMap(newestFirst).sorted {
            ($0.receivedUnixMs, $0.event.id) > ($1.receivedUnixMs, $1.event.id)
        }
        var total = 0
        var kept: [Infranaut_V1_ReceivedEvent] = []
        for event in merged.prefix(limit) {
            total += event.event.payload.count + 256
            if total > maxBytes { break }
            kept.append(event)
        }
        return kept.reversed()
    }
}
