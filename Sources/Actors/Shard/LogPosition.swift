/// Where a shard's op log stands: the next sequence a local write takes, the last applied op and
/// its term, the last checkpoint, and the terms of recent ops (to check where another replica's
/// history continues this one's).
struct LogPosition {
    /// The sequence the next local write takes (ops written but not yet applied lie below it).
    var next: UInt64
    /// The last op applied to memory.
    private(set) var applied: UInt64
    /// The term of the op at `applied` (0 before the first op).
    private(set) var lastTerm: UInt64
    /// The last op covered by a durable checkpoint.
    private(set) var checkpoint: UInt64
    private var recentTerms: [UInt64: UInt64] = [:]

    /// The position after recovery (or a snapshot install): `applied` ops, the last in `lastTerm`,
    /// checkpointed up to `checkpoint`.
    init(applied: UInt64, lastTerm: UInt64, checkpoint: UInt64) {
        self.next = applied + 1
        self.applied = applied
        self.lastTerm = lastTerm
        self.checkpoint = checkpoint
        self.recentTerms = [applied: lastTerm]
    }

    /// Records that the op at `sequence` (the one after `applied`) was applied.
    mutating func apply(sequence: UInt64, term: UInt64) {
        applied = sequence
        lastTerm = term
        recentTerms[sequence] = term
        if recentTerms.count > 8_192 {
            let applied = self.applied
            recentTerms = recentTerms.filter { $0.key + 4_096 > applied }
        }
    }

    /// Takes the next sequence for a local write.
    mutating func takeNext() -> UInt64 {
        defer { next += 1 }
        return next
    }

    /// Records a durable checkpoint up to `sequence` (never moves backwards).
    mutating func checkpointed(through sequence: UInt64) {
        checkpoint = max(checkpoint, sequence)
    }

    /// The term of the op at `sequence`, when still known (0 for sequence 0).
    func term(at sequence: UInt64) -> UInt64? {
        if sequence == applied { return lastTerm }
        if sequence == 0 { return 0 }
        return recentTerms[sequence]
    }
}
