import Cluster
import Foundation
import Monitoring
import Storage
import Wire

/// A snapshot being received from a leader, chunk by chunk.
struct IncomingSnapshot {
    var from: NodeID
    var term: RaftTerm
    var meta: RaftSnapshotMeta
    var nextChunk: UInt32 = 0
    var models: [Infranaut_V1_ModelSnapshot] = []
    var idempotency: [Infranaut_V1_IdempotencyEntry] = []
    var windows: [Infranaut_V1_WindowRecord] = []
    var bytes = 0
    /// The model whose pieces are arriving, and its bytes so far.
    var piece: (model: String, data: Data)?

    /// Adds the next piece of a model sent in pieces; its last piece decodes the model.
    mutating func add(_ next: Infranaut_V1_ModelRecordPiece) throws(SnapshotPieceError) {
        if let piece, piece.model != next.modelID {
            throw SnapshotPieceError(message: "pieces of \(next.modelID) while \(piece.model) was unfinished")
        }
        // Senders cut pieces of at least 16 KiB but the last: tiny ones would make the rebuild
        // cost per piece, not per byte.
        guard next.last || next.data.count >= Self.minimumPieceBytes else {
            throw SnapshotPieceError(message: "a piece of \(next.modelID) of \(next.data.count) bytes")
        }
        // Taken out first, so that appending does not copy what arrived before.
        var data = piece?.data ?? Data()
        piece = nil
        data.append(next.data)
        guard next.last else {
            piece = (next.modelID, data)
            return
        }
        let model: Infranaut_V1_ModelSnapshot
        do {
            model = try Infranaut_V1_ModelSnapshot(serializedBytes: data)
        } catch {
            throw SnapshotPieceError(message: "model \(next.modelID) does not decode: \(error)")
        }
        guard model.modelID == next.modelID else {
            throw SnapshotPieceError(message: "pieces named \(next.modelID) hold model \(model.modelID)")
        }
        // Decoded, a model can take more than its bytes (many small repeated entries): count the
        // difference too.
        bytes += max(0, model.serializedSizeEstimate - data.count)
        models.append(model)
    }

    static let minimumPieceBytes = 16 << 10
}

struct SnapshotPieceError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A received snapshot the core accepted, waiting for the persist that makes it the shard's
/// checkpoint; the state machine is replaced only once that write is durable.
struct PendingInstall {
    var meta: RaftSnapshotMeta
    var models: [Infranaut_V1_ModelSnapshot]
    var idempotency: [Infranaut_V1_IdempotencyEntry]
    var windows: [Infranaut_V1_WindowRecord]
}

/// Checkpoints and snapshots: the state machine written to RocksDB at an applied index so the log
/// before it can go, and the same checkpoint streamed in chunks to a follower that needs entries
/// the leader no longer has.
///
/// Invariants:
/// - A checkpoint is one atomic batch: the models changed since the last one, the idempotency keys
///   remembered and forgotten since, and the `raft-snapshot/` metadata of the index it is at. So
///   `models` and `idempotency` always hold the state machine at exactly that index. Log entries
///   are dropped (from storage and from the core) only behind a durable checkpoint; on a leader,
///   up to `logRetainedEntries` of them stay for followers that do not hold them yet, so a follower
///   slightly behind catches up from the log. What every follower holds goes (a node with a
///   thousand shards kept 64 KiB of log per shard for nobody).
/// - A received snapshot replaces the shard's state in one batch with its checkpoint metadata and
///   the deletion of the log it covers (the core's `persist`), and memory only after that batch is
///   durable, at the persist's place among the directives.
/// - The sender reads its checkpoint through one RocksDB snapshot, so the chunks are one state.
extension ShardActor {
    // MARK: Checkpoints

    /// Writes the state machine at the applied index as the shard's checkpoint and lets the log
    /// before it (minus `logRetainedEntries`) go.
    public func checkpoint() async {
        guard state == .serving, let current = raft, appliedIndex > checkpointIndex, pendingInstall == nil,
            !activities.checkpointing
        else { return }
        activities.checkpointing = true
        defer { checkpointEnded() }
        guard let meta = current.snapshotMeta(at: appliedIndex) else { return }
        let dropThrough = retainedLogStart(before: meta.index, in: current)
        let dirty = models.takeDirty()
        let keys = remembered.takeChanges()
        let results = models.takeWindowResults()
        windowResultsInFlight = results
        defer { windowResultsInFlight = [:] }
        bytesSinceCheckpoint = 0
        var snapshotBytes = 0
        do throws(StorageError) {
            var batch = WriteBatch()
            try addWindowResults(results, to: &batch)
            for model in dirty {
                guard let held = models.residentState(model) else {
                    // A changed model is resident until its checkpoint; a parked one's entry is
                    // already its state.
                    if models.isParked(model) { continue }
                    // Purged since the last checkpoint (a deleted model whose retention ended).
                    batch.delete(StorageKeys.Models.key(shard: shard, model: model), in: store.models)
                    batch.deleteRange(
                        from: StorageKeys.Windows.start(shard: shard, model: model, startMs: .min),
                        to: StorageKeys.Windows.start(shard: shard, model: model, startMs: .max), in: store.windows)
                    continue
                }
                let bytes = try encode(held.snapshot)
                snapshotBytes += bytes.count
                batch.put(StorageKeys.Models.key(shard: shard, model: model), bytes, in: store.models)
            }
            for (key, record) in keys.remembered {
                batch.put(
                    StorageKeys.Idempotency.key(shard: shard, model: key.model, key: key.key), try encode(record),
                    in: store.idempotency)
            }
            for key in keys.forgotten {
                batch.delete(
                    StorageKeys.Idempotency.key(shard: shard, model: key.model, key: key.key), in: store.idempotency)
            }
            try raftLog.addCheckpoint(meta, droppingThrough: dropThrough, to: &batch)
            try await writer.write(batch)
        } catch {
            models.restoreWindowResults(results)
            fail("could not write a checkpoint: \(error)")
            return
        }
        checkpointIndex = max(checkpointIndex, meta.index)
        lastCheckpointBytes = snapshotBytes
        lastCheckpointAt = .now
        if dropThrough > 0, raft != nil, dropThrough <= raft!.appliedIndex { raft!.compact(through: dropThrough) }
    }

    /// The index through which the log can go behind a checkpoint at `index` (see
    /// ``logDropThrough(checkpoint:firstIndex:heldByEveryFollower:retainedEntries:retainedBytes:payloadBytes:)``).
    private func retainedLogStart(before index: RaftIndex, in group: RaftInstance) -> RaftIndex {
        Self.logDropThrough(
            checkpoint: index, firstIndex: group.firstIndex, heldByEveryFollower: group.heldByEveryFollower,
            retainedEntries: settings.logRetainedEntries, retainedBytes: settings.logRetainedBytes,
            payloadBytes: { group.entry(at: $0)?.payloadBytes })
    }

    /// The index through which the log can go behind a checkpoint at `checkpoint`: everything,
    /// except on a leader the entries after `heldByEveryFollower` (what some follower lacks), at
    /// most `retainedEntries` of them and `retainedBytes` of their commands, newest kept first.
    /// `heldByEveryFollower` is `nil` on a replica that is not leader: it keeps none.
    static func logDropThrough(
        checkpoint index: RaftIndex, firstIndex: RaftIndex, heldByEveryFollower: RaftIndex?,
        retainedEntries: UInt64, retainedBytes: Int, payloadBytes: (RaftIndex) -> Int?
    ) -> RaftIndex {
        let lacked = (heldByEveryFollower ?? index) + 1
        var keepFrom = index + 1
        var bytes = 0
        while keepFrom > max(firstIndex, lacked), index + 1 - keepFrom < retainedEntries,
            let entryBytes = payloadBytes(keepFrom - 1)
        {
            bytes += entryBytes
            if bytes > retainedBytes { break }
            keepFrom -= 1
        }
        return keepFrom - 1
    }

    /// Takes a checkpoint in the background once enough entries were applied since the last one,
    /// and the log since holds at least half the bytes that checkpoint wrote. A checkpoint rewrites
    /// every changed model whole, and a model with a spec carries its open windows (megabytes with
    /// segments), so checkpointing every MiB of log would write several times the log; at half,
    /// checkpoints write at most twice the log, and the log a shard holds in memory stays within
    /// half its largest checkpoint (docs/benchmarks.md, issue 11).
    func checkpointIfDue() {
        guard
            appliedIndex - checkpointIndex >= UInt64(settings.checkpointEveryEntries)
                || bytesSinceCheckpoint >= settings.checkpointEveryBytes,
            bytesSinceCheckpoint >= lastCheckpointBytes / 2,
            !activities.checkpointing
        else { return }
        inBackground { await self.checkpoint() }
    }

    /// The node's periodic checkpoint (every `checkpointInterval`): skipped while the log since the
    /// last checkpoint holds less than a quarter of that checkpoint's bytes, for at most
    /// `checkpointMaxDelay`, so that a model with large windows and a trickle of rows is not
    /// rewritten whole every interval.
    public func periodicCheckpoint() async {
        if bytesSinceCheckpoint < lastCheckpointBytes / 4, let last = lastCheckpointAt,
            ContinuousClock.now - last < settings.checkpointMaxDelay
        {
            return
        }
        await checkpoint()
    }

    /// The models (handed to `each`, one at a time) and idempotency keys of the shard's durable
    /// checkpoint.
    static func loadCheckpoint(shard: Int, store: ShardStore, each: (ModelState) -> Void) throws(StorageError)
        -> [(model: String, key: String, record: Infranaut_V1_IdempotencyRecord)]
    {
        var idempotency: [(model: String, key: String, record: Infranaut_V1_IdempotencyRecord)] = []
        let prefix = StorageKeys.Shard.prefix(shard)
        try store.database.scan(prefix: prefix, in: store.models) { (entry) throws(StorageError) -> Bool in
            let snapshot = try decode(Infranaut_V1_ModelSnapshot.self, entry.value, "model snapshot of shard \(shard)")
            each(try Self.modelState(snapshot, shard: shard))
            return true
        }
        try store.database.scan(prefix: prefix, in: store.idempotency) { (entry) throws(StorageError) -> Bool in
            let (_, model, key) = try StorageKeys.Idempotency.parse(entry.key)
            let record = try decode(Infranaut_V1_IdempotencyRecord.self, entry.value, "idempotency record")
            idempotency.append((model, key, record))
            return true
        }
        return idempotency
    }

    static func modelState(_ snapshot: Infranaut_V1_ModelSnapshot, shard: Int) throws(StorageError) -> ModelState {
        do throws(ProfileDecodingError) {
            return try ModelState(snapshot: snapshot)
        } catch {
            throw StorageError(
                .corruption, operation: "load model \(snapshot.modelID) of shard \(shard)",
                message: "its stored profiles cannot be decoded", cause: error)
        }
    }

    // MARK: Sending

    /// Streams the shard's latest durable checkpoint to `peer` in chunks (the core asked for it in
    /// `term`), unless a stream to it already runs. A lost chunk ends the attempt; the core asks
    /// again after an election timeout, and the receiver resumes where it got to.
    func startSnapshot(to peer: NodeID, term: RaftTerm) {
        guard !sendingSnapshotTo.contains(peer), let links else { return }
        sendingSnapshotTo.insert(peer)
        inBackground { await self.streamSnapshot(to: peer, term: term, over: links.transport) }
    }

    private func streamSnapshot(to peer: NodeID, term: RaftTerm, over transport: any RaftOutbound) async {
        defer { sendingSnapshotTo.remove(peer) }
        let chunks: [Infranaut_V1_RaftSnapshotChunk]
        do throws(StorageError) {
            chunks = try checkpointChunks(term: term)
        } catch {
            logger.error("cannot read the checkpoint to send", metadata: ["to": "\(peer)", "error": "\(error)"])
            return
        }
        var next = 0
        while next < chunks.count {
            guard state == .serving, raft?.role == .leader, raft?.term == term else { return }
            guard let answer = await transport.sendSnapshotChunk(chunks[next], to: peer) else { return }
            if answer.term > term || chunks[next].last { return }
            next = Int(answer.nextChunk)
        }
    }

    /// The durable checkpoint, read through one RocksDB snapshot, in chunks of at most
    /// `snapshotChunkBytes` (and 64 KiB) of stored bytes.
    func checkpointChunks(term: RaftTerm) throws(StorageError) -> [Infranaut_V1_RaftSnapshotChunk] {
        let db = store.database
        let view = try db.makeSnapshot()
        defer { view.release() }
        guard let metaBytes = try db.get(StorageKeys.RaftSnapshot.key(shard: shard), in: store.meta, snapshot: view)
        else {
            throw StorageError(
                .corruption, operation: "send a snapshot of shard \(shard)", message: "it has no checkpoint")
        }
        let meta = try decode(Infranaut_V1_RaftSnapshotMeta.self, metaBytes, "raft snapshot metadata of shard \(shard)")
        let limit = max(settings.snapshotChunkBytes, 64 << 10)
        var chunks: [Infranaut_V1_RaftSnapshotChunk] = []
        var current = Infranaut_V1_RaftSnapshotChunk()
        var bytes = 0
        func close() {
            current.shard = UInt32(shard)
            current.from = nodeID.rawValue
            current.term = term
            current.meta = meta
            current.chunk = UInt32(chunks.count)
            chunks.append(current)
            current = Infranaut_V1_RaftSnapshotChunk()
            bytes = 0
        }
        let prefix = StorageKeys.Shard.prefix(shard)
        try db.scan(prefix: prefix, in: store.models, snapshot: view) { (entry) throws(StorageError) -> Bool in
            let value = entry.value
            guard value.count > limit else {
                if bytes > 0 && bytes + value.count > limit { close() }
                current.models.append(try decode(Infranaut_V1_ModelSnapshot.self, value, "model snapshot"))
                bytes += value.count
                return true
            }
            // Larger than a chunk: its stored bytes in pieces, filling chunks.
            let model = try StorageKeys.Models.parse(entry.key).model
            var offset = 0
            while offset < value.count {
                if bytes > 0 && limit - bytes < IncomingSnapshot.minimumPieceBytes { close() }
                let size = min(value.count - offset, limit - bytes)
                current.modelPieces.append(
                    .with {
                        $0.modelID = model
                        $0.data = Data(value[offset..<(offset + size)])
                        $0.last = offset + size == value.count
                    })
                bytes += size
                offset += size
            }
            return true
        }
        try db.scan(prefix: prefix, in: store.idempotency, snapshot: view) { (entry) throws(StorageError) -> Bool in
            if bytes > 0 && bytes + entry.value.count + 64 > limit { close() }
            let (_, model, key) = try StorageKeys.Idempotency.parse(entry.key)
            let record = try decode(Infranaut_V1_IdempotencyRecord.self, entry.value, "idempotency record")
            current.idempotency.append(
                .with {
                    $0.modelID = model
                    $0.key = key
                    $0.record = record
                })
            bytes += entry.value.count + 64
            return true
        }
        try db.scan(prefix: prefix, in: store.windows, snapshot: view) { (entry) throws(StorageError) -> Bool in
            if bytes > 0 && bytes + entry.value.count + entry.key.count > limit { close() }
            current.windows.append(
                .with {
                    $0.key = Data(entry.key)
                    $0.result = Data(entry.value)
                })
            bytes += entry.value.count + entry.key.count
            return true
        }
        current.last = true
        close()
        return chunks
    }

    // MARK: Receiving

    /// One chunk of a leader's snapshot, from `sender` (the node that sealed the frame). The last
    /// chunk hands the whole to the core, which accepts it only from a current leader and only
    /// when it is ahead of what this replica committed.
    func receiveSnapshotChunk(_ chunk: Infranaut_V1_RaftSnapshotChunk, from sender: NodeID)
        -> Infranaut_V1_RaftSnapshotChunkResponse
    {
        guard state == .serving, chunk.from == sender.rawValue else { return .init() }
        if raft == nil {
            raft = Self.replica(node: nodeID, shard: shard, durable: RaftDurableState(), settings: settings.raft)
            execute(raft!.start(now: RaftClock.now))
        }
        let currentTerm = raft!.term
        guard chunk.term >= currentTerm else {
            return .with {
                $0.term = currentTerm
                $0.nextChunk = chunk.chunk
            }
        }
        guard let meta = try? RaftSnapshotMeta(wire: chunk.meta) else { return .init() }
        if incoming?.meta != meta || incoming?.from != sender || incoming?.term != chunk.term {
            guard chunk.chunk == 0 else { return .init() }  // start over from the first chunk
            incoming = IncomingSnapshot(from: sender, term: chunk.term, meta: meta)
        }
        guard chunk.chunk == incoming!.nextChunk else { return .with { $0.nextChunk = incoming!.nextChunk } }
        incoming!.models += chunk.models
        incoming!.idempotency += chunk.idempotency
        incoming!.windows += chunk.windows
        incoming!.bytes +=
            chunk.models.reduce(0) { $0 + $1.serializedSizeEstimate } + chunk.idempotency.count * 96
            + chunk.windows.reduce(0) { $0 + $1.key.count + $1.result.count }
            + chunk.modelPieces.reduce(0) { $0 + $1.data.count }
        guard incoming!.bytes <= settings.maxIncomingSnapshotBytes else {
            logger.error(
                "a snapshot exceeds the size a replica receives; refused",
                metadata: ["from": "\(sender)", "limit": "\(settings.maxIncomingSnapshotBytes)"])
            incoming = nil
            return .init()
        }
        do throws(SnapshotPieceError) {
            for piece in chunk.modelPieces {
                try incoming!.add(piece)
                guard incoming!.bytes <= settings.maxIncomingSnapshotBytes else {
                    throw SnapshotPieceError(
                        message:
                            "the decoded models exceed the \(settings.maxIncomingSnapshotBytes) bytes a replica receives"
                    )
                }
            }
        } catch {
            logger.error(
                "a snapshot's model pieces do not fit together; refused",
                metadata: ["from": "\(sender)", "error": "\(error)"])
            incoming = nil
            return .init()
        }
        incoming!.nextChunk += 1
        guard chunk.last else { return .with { $0.nextChunk = incoming!.nextChunk } }
        let received = incoming!
        incoming = nil
        guard received.piece == nil else {
            logger.error("a snapshot ended inside a model's pieces; refused", metadata: ["from": "\(sender)"])
            return .init()
        }
        let (accepted, out) = raft!.installSnapshot(meta, leader: sender, term: chunk.term, now: RaftClock.now)
        if accepted {
            pendingInstall = PendingInstall(
                meta: meta, models: received.models, idempotency: received.idempotency, windows: received.windows)
        }
        execute(out)
        return .with {
            $0.installed = accepted
            $0.nextChunk = received.nextChunk
        }
    }

    /// The writes that replace the shard's stored state with the pending snapshot's, for the
    /// persist that installs `meta`.
    func addInstall(of meta: RaftSnapshotMeta, to batch: inout WriteBatch) throws(StorageError) {
        guard let install = pendingInstall, install.meta == meta else {
            throw StorageError(
                .corruption, operation: "install a snapshot of shard \(shard)",
                message: "the core asked to install snapshot \(meta.index) that was never received")
        }
        let range = StorageKeys.Shard.range(shard)
        batch.deleteRange(from: range.start, to: range.end, in: store.models)
        batch.deleteRange(from: range.start, to: range.end, in: store.idempotency)
        batch.deleteRange(from: range.start, to: range.end, in: store.windows)
        for record in install.windows {
            // Only this shard's keys: a record for another range would outlive the next install.
            let key = [UInt8](record.key)
            guard key.starts(with: range.start) else { continue }
            batch.put(key, [UInt8](record.result), in: store.windows)
        }
        for model in install.models {
            batch.put(StorageKeys.Models.key(shard: shard, model: model.modelID), try encode(model), in: store.models)
        }
        for entry in install.idempotency {
            batch.put(
                StorageKeys.Idempotency.key(shard: shard, model: entry.modelID, key: entry.key),
                try encode(entry.record),
                in: store.idempotency)
        }
    }

    /// Replaces the state machine with the pending snapshot's, once its write is durable.
    func installPending(_ meta: RaftSnapshotMeta) {
        guard let install = pendingInstall, install.meta == meta else { return }
        pendingInstall = nil
        var loaded: [String: ModelState] = [:]
        for snapshot in install.models {
            do throws(StorageError) {
                loaded[snapshot.modelID] = try Self.modelState(snapshot, shard: shard)
            } catch {
                fail("an installed snapshot cannot be decoded: \(error)")
                return
            }
        }
        store.modelCount.add(models.replace(with: loaded))
        remembered = IdempotencyTable(
            install.idempotency.map { (model: $0.modelID, key: $0.key, record: $0.record) })
        _ = remembered.takeChanges()
        appliedIndex = meta.index
        checkpointIndex = meta.index
        proposedOps = proposedOps.filter { $0.key > meta.index }
        logger.info("installed a snapshot", metadata: ["index": "\(meta.index)", "models": "\(loaded.count)"])
    }
}

extension ShardActor {
    /// Puts the results closed since the last checkpoint, and adds late rows to results stored
    /// before it (read, changed, written in the same batch).
    func addWindowResults(_ taken: [String: ShardModels.TakenResults], to batch: inout WriteBatch)
        throws(StorageError)
    {
        for (model, part) in taken {
            for (key, closed) in part.results {
                let stored = Self.windowKey(shard: shard, model: model, key)
                // A window closes once: a result already stored keeps its figures, and the rows of a
                // second close (new window settings restart the watermark) count as late on it.
                if let bytes = try store.database.get(stored, in: store.windows),
                    var first = try? WindowResult(serialized: bytes)
                {
                    first.lateRows &+= closed.rowsAsLate
                    batch.put(stored, first.serialized(), in: store.windows)
                    continue
                }
                batch.put(stored, closed.stored, in: store.windows)
            }
            for (key, rows) in part.late {
                let stored = Self.windowKey(shard: shard, model: model, key)
                guard let bytes = try store.database.get(stored, in: store.windows),
                    var result = try? WindowResult(serialized: bytes)
                else { continue }  // gone by retention
                result.lateRows &+= rows
                batch.put(stored, result.serialized(), in: store.windows)
            }
        }
    }

    static func windowKey(shard: Int, model: String, _ key: WindowKey) -> [UInt8] {
        var series = StorageKeys.Windows.Series(version: key.version)
        if let segment = key.segment {
            series.segmentColumn = segment.column
            switch segment.value {
            case .value(let value):
                series.segmentKind = 1
                series.segmentValue = value
            case .missing: series.segmentKind = 2
            case .other: series.segmentKind = 3
            }
        }
        return StorageKeys.Windows.key(shard: shard, model: model, startMs: key.startMs, series: series)
    }
}

extension Infranaut_V1_ModelSnapshot {
    /// The bytes a model snapshot takes, roughly: its serialized profiles (all-time, references)
    /// and its windows' state dominate.
    /// Repeated entries are charged 64 bytes each besides their bytes, which covers what they take
    /// decoded however small they are on the wire.
    var serializedSizeEstimate: Int {
        let features = self.features.reduce(64) { $0 + $1.profile.count + $1.name.utf8.count + 64 }
        let references = self.references.reduce(0) { sum, r in
            r.features.reduce(sum + 64) { $0 + $1.profile.count + 64 }
        }
        let latest = latestWindows.reduce(0) { $0 + $1.count + 64 }
        return features + references + windows.count + latest + untypedMissing.count * 64
    }
}
