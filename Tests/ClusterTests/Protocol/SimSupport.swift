import Cluster

/// SplitMix64, a seedable PRNG for the simulation (independent of the generator each SWIM instance keeps).
struct SimRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A binary min-heap of timed events; ties keep insertion order, so runs are reproducible.
/// The heap moves only small keys; payloads stay in slots (reused once popped).
struct EventQueue<Payload> {
    private struct Entry {
        var time: Duration
        var order: UInt64
        var slot: Int

        func precedes(_ other: Entry) -> Bool {
            time != other.time ? time < other.time : order < other.order
        }
    }

    private var heap: [Entry] = []
    private var payloads: [Payload?] = []
    private var freeSlots: [Int] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var nextTime: Duration? { heap.first?.time }

    mutating func push(_ payload: Payload, at time: Duration) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            payloads[slot] = payload
        } else {
            slot = payloads.count
            payloads.append(payload)
        }
        heap.append(Entry(time: time, order: counter, slot: slot))
        counter += 1
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: Duration, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < heap.count && heap[left].precedes(heap[best]) { best = left }
            if right < heap.count && heap[right].precedes(heap[best]) { best = right }
            if best == parent { break }
            heap.swapAt(parent, best)
            parent = best
        }
        let payload = payloads[top.slot].take()!
        freeSlots.append(top.slot)
        return (top.time, payload)
    }
}

/// Statistics helpers for reporting measured figures.
extension Array where Element == Duration {
    func percentile(_ p: Double) -> Duration {
        precondition(!isEmpty)
        let sorted = self.sorted()
        let rank = Int((p * Double(sorted.count - 1)).rounded())
        return sorted[rank]
    }

    var median: Duration { percentile(0.5) }
}

extension Duration {
    var secondsValue: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) * 1e-18
    }

    var pretty: String {
        let ms = Int((secondsValue * 1000).rounded())
        return "\(ms / 1000).\(String(repeating: "0", count: 3 - String(ms % 1000).count))\(ms % 1000) s"
    }
}
