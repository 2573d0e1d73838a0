import Wire

/// The events a coordinator received, newest kept: bounded by count and by payload bytes, oldest
/// dropped first. A known id is answered as a duplicate for as long as it is kept, so delivery
/// retries are stored once.
///
/// Events of the *retained* kinds (channels and silences: what people configured, few and small)
/// are kept apart, with their own count cap, so the stream of alert changes and notification
/// records never pushes them out: a coordinator that restarts after a busy month still knows its
/// channels (docs/alerting.md, "Coordinators that join or restart").
struct CoordinatorInbox {
    let capacity: Int
    let maxBytes: Int
    /// Kinds kept in their own tier, and how many of them are kept.
    let retainedKinds: Set<String>
    let retainedCapacity: Int

    private var events: [String: Infranaut_V1_ReceivedEvent] = [:]
    /// Ids by arrival, oldest first, of the common and the retained kinds.
    private var common = Tier()
    private var retained = Tier()
    /// Payload bytes of the common kinds (the retained tier is bounded by its count).
    private var bytes = 0
    /// Stored events that did not fit the caps when loaded; their records are still to be deleted.
    private var droppedAtLoad: [String] = []
    /// Events received since the inbox was created, kept or not (for `events`).
    private(set) var receivedTotal: UInt64 = 0

    /// Ids by arrival, oldest first; entries before `head` were dropped.
    private struct Tier {
        var order: [String] = []
        var head = 0
        var count: Int { order.count - head }
        var ids: ArraySlice<String> { order[head...] }

        mutating func dropFirst() -> String {
            defer { head += 1 }
            return order[head]
        }

        mutating func compact() {
            guard head > 4_096 else { return }
            order.removeFirst(head)
            head = 0
        }
    }

    /// The inbox of the stored events `received`: the newest run of each tier that fits its caps.
    init(
        loading received: [Infranaut_V1_ReceivedEvent], capacity: Int, maxBytes: Int, retainedKinds: Set<String> = [],
        retainedCapacity: Int = 10_000
    ) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        self.retainedKinds = retainedKinds
        self.retainedCapacity = retainedCapacity
        let sorted = received.sorted { $0.receivedUnixMs < $1.receivedUnixMs }
        var kept: Set<String> = []
        var keptCommon = 0
        var keptRetained = 0
        var full = (common: false, retained: false)
        for event in sorted.reversed() {
            // Once one does not fit, every older one of its tier goes too, so what is kept is the
            // newest run.
            if retainedKinds.contains(event.event.kind) {
                if !full.retained, keptRetained < retainedCapacity {
                    keptRetained += 1
                    kept.insert(event.event.id)
                } else {
                    full.retained = true
                    droppedAtLoad.append(event.event.id)
                }
            } else if !full.common, keptCommon < capacity, bytes + event.event.payload.count <= maxBytes {
                keptCommon += 1
                bytes += event.event.payload.count
                kept.insert(event.event.id)
            } else {
                full.common = true
                droppedAtLoad.append(event.event.id)
            }
        }
        for event in sorted where kept.contains(event.event.id) {
            events[event.event.id] = event
            if retainedKinds.contains(event.event.kind) {
                retained.order.append(event.event.id)
            } else {
                common.order.append(event.event.id)
            }
        }
        receivedTotal = UInt64(received.count)
    }

    func contains(_ id: String) -> Bool { events[id] != nil }

    mutating func insert(_ event: Infranaut_V1_ReceivedEvent) {
        events[event.event.id] = event
        if retainedKinds.contains(event.event.kind) {
            retained.order.append(event.event.id)
        } else {
            common.order.append(event.event.id)
            bytes += event.event.payload.count
        }
        receivedTotal += 1
    }

    /// Drops the oldest events of each tier until its caps hold; returns every id whose stored
    /// record is to be deleted (those and the ones that did not fit at load).
    mutating func trim() -> [String] {
        var dropped = droppedAtLoad
        droppedAtLoad = []
        while common.count > capacity || bytes > maxBytes {
            let id = common.dropFirst()
            bytes -= events[id]?.event.payload.count ?? 0
            events[id] = nil
            dropped.append(id)
        }
        while retained.count > retainedCapacity {
            let id = retained.dropFirst()
            events[id] = nil
            dropped.append(id)
        }
        common.compact()
        retained.compact()
        return dropped
    }

    /// Up to `limit` of the newest events (of `kinds`, or every kind when it is empty), oldest
    /// first, whose payloads (plus 256 bytes each) fit `maxBytes`.
    func newest(limit: Int, maxBytes: Int, kinds: Set<String> = []) -> [Infranaut_V1_ReceivedEvent] {
        func newestFirst(_ tier: Tier) -> [Infranaut_V1_ReceivedEvent] {
            var found: [Infranaut_V1_ReceivedEvent] = []
            for id in tier.ids.reversed() where found.count < limit {
                guard let event = events[id], kinds.isEmpty || kinds.contains(event.event.kind) else { continue }
                found.append(event)
            }
            return found
        }
        // Both tiers newest first, merged by arrival.
        let merged = (newestFirst(common) + newestFirst(retained)).sorted { $0.receivedUnixMs > $1.receivedUnixMs }
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
