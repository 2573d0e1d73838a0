import Wire

/// The events a coordinator received, newest kept: bounded by count and by payload bytes, oldest
/// dropped first. A known id is answered as a duplicate for as long as it is kept, so delivery
/// retries are stored once.
struct CoordinatorInbox {
    let capacity: Int
    let maxBytes: Int
    private var events: [String: Infranaut_V1_ReceivedEvent] = [:]
    /// Ids by arrival, oldest first; entries before `head` were dropped.
    private var order: [String] = []
    private var head = 0
    private var bytes = 0
    /// Stored events that did not fit the caps when loaded; their records are still to be deleted.
    private var droppedAtLoad: [String] = []
    /// Events received since the inbox was created, kept or not (for `events`).
    private(set) var receivedTotal: UInt64 = 0

    /// The inbox of the stored events `received`: the newest run that fits the caps.
    init(loading received: [Infranaut_V1_ReceivedEvent], capacity: Int, maxBytes: Int) {
        self.capacity = capacity
        self.maxBytes = maxBytes
        let sorted = received.sorted { $0.receivedUnixMs < $1.receivedUnixMs }
        var kept = 0
        for event in sorted.reversed() {
            // Once one does not fit, every older one goes too, so what is kept is the newest run.
            if droppedAtLoad.isEmpty, kept < capacity, bytes + event.event.payload.count <= maxBytes {
                kept += 1
                bytes += event.event.payload.count
            } else {
                droppedAtLoad.append(event.event.id)
            }
        }
        for event in sorted.suffix(kept) {
            events[event.event.id] = event
            order.append(event.event.id)
        }
        receivedTotal = UInt64(received.count)
    }

    func contains(_ id: String) -> Bool { events[id] != nil }

    mutating func insert(_ event: Infranaut_V1_ReceivedEvent) {
        events[event.event.id] = event
        order.append(event.event.id)
        bytes += event.event.payload.count
        receivedTotal += 1
    }

    /// Drops the oldest events until the caps hold; returns every id whose stored record is to be
    /// deleted (those and the ones that did not fit at load).
    mutating func trim() -> [String] {
        var dropped = droppedAtLoad
        droppedAtLoad = []
        while order.count - head > capacity || bytes > maxBytes {
            let id = order[head]
            bytes -= events[id]?.event.payload.count ?? 0
            events[id] = nil
            dropped.append(id)
            head += 1
        }
        if head > 4_096 {
            order.removeFirst(head)
            head = 0
        }
        return dropped
    }

    /// Up to `limit` of the newest events, oldest first, whose payloads (plus 256 bytes each) fit
    /// `maxBytes`.
    func newest(limit: Int, maxBytes: Int) -> [Infranaut_V1_ReceivedEvent] {
        var total = 0
        var newestFirst: [Infranaut_V1_ReceivedEvent] = []
        for id in order[head...].suffix(limit).reversed() {
            guard let event = events[id] else { continue }
            total += event.event.payload.count + 256
            if total > maxBytes { break }
            newestFirst.append(event)
        }
        return newestFirst.reversed()
    }
}
