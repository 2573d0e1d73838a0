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
    var stream: UInt64 = 0
    var nextChunk: UInt32 = 0
    var models: [Infranaut_V1_ModelSnapshot] = []
    var idempotency: [Infranaut_V1_IdempotencyEntry] = []
    /// (Kept predictions go straight to the shard's other generation in RocksDB, not here.)
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
    /// The generation the snapshot's predictions were written under (the shard's other one).
    var predictionGeneration: UInt8
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
        let started = ContinuousClock.now
        defer {
            checkpointEnded()
            settings.onCheckpoint?(.now - started)
        }
        guard let meta = current.snapshotMeta(at: appliedIndex) else { return }
        let dropThrough = retainedLogStart(before: meta.index, in: current)
        let dirty = models.takeDirty()
        let keys = remembered.takeChanges()
        let results = models.takeWindowResults()
        windowResultsInFlight = results
        defer { windowResultsInFlight = [:] }
        let predictions = models.takePredictions()
        bytesSinceCheckpoint = 0
        var snapshotBytes = 0
        do throws(StorageError) {
            var batch = WriteBatch()
            try addWindowResults(results, to: &batch)
            try addPredictions(predictions, expiring: dirty, to: &batch)
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
            models.restorePredictions(predictions)
            fail("could not write a checkpoint: \(error)")
            return
        }
        models.predictionsWritten()
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
        // Kept predictions wait in memory until a checkpoint writes them: many of them are a reason
        // of their own, whatever the model bytes.
        let predictionsDue = models.stagedPredictions >= Self.checkpointEveryStagedPredictions
        guard
            appliedIndex - checkpointIndex >= UInt64(settings.checkpointEveryEntries)
                || bytesSinceCheckpoint >= settings.checkpointEveryBytes || predictionsDue,
            bytesSinceCheckpoint >= lastCheckpointBytes / 2 || predictionsDue,
            !activities.checkpointing
        else { return }
        inBackground { await self.checkpoint() }
    }

    /// Staged prediction records (kept or labelled since the last checkpoint) that make a
    /// checkpoint due: ~100 bytes each in memory, so at most ~20 MB per shard, twice while one is
    /// being written.
    static let checkpointEveryStagedPredictions = 200_000

    /// The node's periodic checkpoint (every `checkpointInterval`): skipped while the log since the
    /// last checkpoint holds less than a quarter of that checkpoint's bytes, for at most
    /// `checkpointMaxDelay`, so that a model with large windows and a trickle of rows is not
    /// rewritten whole every interval.
    public func periodicCheckpoint() async {
        if bytesSinceCheckpoint < lastCheckpointBytes / 4, models.stagedPredictions == 0, let last = lastCheckpointAt,
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
        var stream: CheckpointStream
        do throws(StorageError) {
            stream = try CheckpointStream(self, term: term)
        } catch {
            logger.error("cannot read the checkpoint to send", metadata: ["to": "\(peer)", "error": "\(error)"])
            return
        }
        defer { stream.view.release() }
        var next = 0
        while true {
            guard state == .serving, raft?.role == .leader, raft?.term == term else { return }
            let chunk: Infranaut_V1_RaftSnapshotChunk
            do throws(StorageError) {
                // A receiver of this stream asks for the next chunk or the same one again; anything
                // else ends the attempt (the core asks again; a new stream starts at chunk 0).
                guard let found = try stream.chunk(next) else { return }
                chunk = found
            } catch {
                logger.error("cannot read the checkpoint to send", metadata: ["to": "\(peer)", "error": "\(error)"])
                return
            }
            guard let answer = await transport.sendSnapshotChunk(chunk, to: peer) else { return }
            if answer.term > term || chunk.last { return }
            next = Int(answer.nextChunk)
        }
    }

    /// The durable checkpoint, read through one RocksDB snapshot, in chunks of at most
    /// `snapshotChunkBytes` (and 64 KiB) of stored bytes, every chunk at once (for tests; a
    /// follower gets them one by one from ``CheckpointStream``).
    func checkpointChunks(term: RaftTerm) throws(StorageError) -> [Infranaut_V1_RaftSnapshotChunk] {
        var stream = try CheckpointStream(self, term: term)
        defer { stream.view.release() }
        var chunks: [Infranaut_V1_RaftSnapshotChunk] = []
        while chunks.last?.last != true, let chunk = try stream.chunk(chunks.count) { chunks.append(chunk) }
        return chunks
    }

    /// The models, idempotency keys and window results of the durable checkpoint, in chunks, all
    /// read at once (they are bounded by what the shard holds in memory anyway).
    fileprivate func baseChunks(view: Snapshot, meta: Infranaut_V1_RaftSnapshotMeta, limit: Int, term: RaftTerm)
        throws(StorageError) -> [Infranaut_V1_RaftSnapshotChunk]
    {
        let db = store.database
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
        close()
        return chunks
    }
}

/// A checkpoint on its way to a follower: the base chunks (``ShardActor/baseChunks``), then the
/// kept predictions, read chunk by chunk through the same RocksDB snapshot as the follower asks
/// for them, so a shard's predictions (days of them) are never all in memory. Every chunk carries
/// the stream's id: a receiver resumes only within one stream, so the leader only ever reads the
/// next chunk (or hands the last one again), never skips through days of predictions in one turn.
struct CheckpointStream {
    let view: Snapshot
    private let base: [Infranaut_V1_RaftSnapshotChunk]
    private let template: Infranaut_V1_RaftSnapshotChunk
    private let database: Database
    private let family: ColumnFamily
    private let prefix: [UInt8]
    private let limit: Int
    /// The chunk the cursor reads next, and its first key (nil: past the last prediction).
    private var cursorChunk: Int
    private var cursorKey: [UInt8]?
    /// The prediction chunk read last, for a receiver that asks for it again.
    private var lastRead: Infranaut_V1_RaftSnapshotChunk?

    init(_ shard: isolated ShardActor, term: RaftTerm) throws(StorageError) {
        let db = shard.store.database
        let view = try db.makeSnapshot()
        guard
            let metaBytes = try db.get(
                StorageKeys.RaftSnapshot.key(shard: shard.shard), in: shard.store.meta, snapshot: view)
        else {
            view.release()
            throw StorageError(
                .corruption, operation: "send a snapshot of shard \(shard.shard)", message: "it has no checkpoint")
        }
        let meta = try decode(
            Infranaut_V1_RaftSnapshotMeta.self, metaBytes, "raft snapshot metadata of shard \(shard.shard)")
        let generation =
            try db.get(
                StorageKeys.Predictions.Generation.key(shard: shard.shard), in: shard.store.meta, snapshot: view)?
            .first ?? 0
        limit = max(shard.settings.snapshotChunkBytes, 64 << 10)
        var base = try shard.baseChunks(view: view, meta: meta, limit: limit, term: term)
        let stream = UInt64.random(in: 1...UInt64.max)
        for i in base.indices { base[i].stream = stream }
        self.base = base
        template = .with {
            $0.shard = UInt32(shard.shard)
            $0.from = shard.nodeID.rawValue
            $0.term = term
            $0.meta = meta
            $0.stream = stream
        }
        self.view = view
        database = db
        family = shard.store.predictions
        prefix = StorageKeys.Predictions.generationRange(shard: shard.shard, generation: generation).start
        cursorChunk = base.count
        cursorKey = prefix
    }

    /// Chunk `index` (the last one is marked): a base chunk, the next prediction chunk, or the
    /// one read last again; nil for any other (a receiver that is not following this stream).
    mutating func chunk(_ index: Int) throws(StorageError) -> Infranaut_V1_RaftSnapshotChunk? {
        if index < base.count { return base[index] }
        if index == cursorChunk - 1, let lastRead { return lastRead }
        guard index == cursorChunk, cursorChunk == base.count || cursorKey != nil else { return nil }
        var chunk = try predictionChunk()
        chunk.chunk = UInt32(index)
        lastRead = chunk
        return chunk
    }

    /// The chunk at the cursor, moving the cursor past it.
    private mutating func predictionChunk() throws(StorageError) -> Infranaut_V1_RaftSnapshotChunk {
        var chunk = template
        var bytes = 0
        var stoppedAt: [UInt8]?
        if let start = cursorKey {
            let limit = self.limit
            try database.scan(prefix: prefix, from: start, in: family, snapshot: view) {
                (entry) throws(StorageError) -> Bool in
                if bytes > 0 && bytes + entry.value.count + entry.key.count > limit {
                    stoppedAt = entry.key
                    return false
                }
                chunk.predictions.append(
                    .with {
                        $0.key = Data(entry.key)
                        $0.result = Data(entry.value)
                    })
                bytes += entry.value.count + entry.key.count
                return true
            }
        }
        cursorKey = stoppedAt
        chunk.last = stoppedAt == nil
        cursorChunk += 1
        return chunk
    }
}

extension ShardActor {
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
        // The staged predictions of a received snapshot wait in the other generation until its
        // install is durable: no new stream may start over them before.
        guard pendingInstall == nil else { return .init() }
        let staging = models.predictionGeneration ^ 1
        if incoming?.meta != meta || incoming?.from != sender || incoming?.term != chunk.term
            || incoming?.stream != chunk.stream
        {
            guard chunk.chunk == 0 else { return .init() }  // start over from the first chunk
            incoming = IncomingSnapshot(from: sender, term: chunk.term, meta: meta, stream: chunk.stream)
            // What an interrupted stream left there goes first.
            let range = StorageKeys.Predictions.generationRange(shard: shard, generation: staging)
            do throws(StorageError) {
                try store.database.deleteRange(from: range.start, to: range.end, in: store.predictions)
            } catch {
                logger.error("cannot clear the staging range for a snapshot", metadata: ["error": "\(error)"])
                incoming = nil
                return .init()
            }
        }
        guard chunk.chunk == incoming!.nextChunk else { return .with { $0.nextChunk = incoming!.nextChunk } }
        incoming!.models += chunk.models
        incoming!.idempotency += chunk.idempotency
        incoming!.windows += chunk.windows
        incoming!.bytes +=
            chunk.models.reduce(0) { $0 + $1.serializedSizeEstimate } + chunk.idempotency.count * 96
            + chunk.windows.reduce(0) { $0 + $1.key.count + $1.result.count }
            + chunk.modelPieces.reduce(0) { $0 + $1.data.count }
        if !chunk.predictions.isEmpty {
            // Unsynced: the install's synced write makes them durable with it (one WAL, in order).
            var batch = WriteBatch()
            for record in chunk.predictions {
                // Only this shard's keys, moved to the staging generation.
                guard let key = StorageKeys.Predictions.rekey([UInt8](record.key), shard: shard, to: staging),
                    (try? Infranaut_V1_PredictionRecord(serializedBytes: record.result)) != nil
                else {
                    logger.error("a snapshot carries a prediction record that does not decode; refused")
                    incoming = nil
                    return .init()
                }
                batch.put(key, [UInt8](record.result), in: store.predictions)
            }
            do throws(StorageError) {
                try store.database.write(batch, sync: false)
            } catch {
                logger.error("cannot stage a snapshot's predictions", metadata: ["error": "\(error)"])
                incoming = nil
                return .init()
            }
        }
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
                meta: meta, models: received.models, idempotency: received.idempotency, windows: received.windows,
                predictionGeneration: staging)
        } else {
            // Refused (stale): what it staged is garbage; the next stream would clear it anyway.
            let range = StorageKeys.Predictions.generationRange(shard: shard, generation: staging)
            try? store.database.deleteRange(from: range.start, to: range.end, in: store.predictions)
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
        // The staged predictions become the shard's; the ones it had go.
        let active = StorageKeys.Predictions.generationRange(shard: shard, generation: install.predictionGeneration ^ 1)
        batch.deleteRange(from: active.start, to: active.end, in: store.predictions)
        batch.put(
            StorageKeys.Predictions.Generation.key(shard: shard), [install.predictionGeneration], in: store.meta)
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
        models.predictionGeneration = install.predictionGeneration
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
            // One read and one write per window: a key can have a new result and late rows or labels
            // for the one stored before it (a second close), and a batch's later put would hide an
            // earlier one's changes.
            for key in Set(part.results.keys).union(part.late.keys).union(part.labels.keys) {
                let stored = Self.windowKey(shard: shard, model: model, key)
                var result: WindowResult?
                if let bytes = try store.database.get(stored, in: store.windows) {
                    result = try? WindowResult(serialized: bytes)
                }
                if result != nil {
                    result!.lateRows &+= part.late[key] ?? 0
                    if let labels = part.labels[key] { result!.addLabels(labels) }
                    // A window closes once: a result already stored keeps its figures, and the rows
                    // of a second close (new window settings restart the watermark) count as late
                    // on it, its labels in it.
                    if let closed = part.results[key] {
                        result!.lateRows &+= closed.rowsAsLate
                        if let labels = closed.labelsSince { result!.addLabels(labels) }
                    }
                    batch.put(stored, result!.serialized(), in: store.windows)
                } else if let closed = part.results[key] {
                    batch.put(stored, closed.stored, in: store.windows)
                }  // else: gone by retention
            }
        }
    }

    /// Puts the predictions kept or labelled since the last checkpoint (in live epochs), after
    /// deleting all records of models whose records were voided and, for every changed model, the
    /// epochs that are no longer live (docs/performance.md).
    func addPredictions(_ taken: PredictionBuffer, expiring changed: Set<String>, to batch: inout WriteBatch)
        throws(StorageError)
    {
        let generation = models.predictionGeneration
        for model in taken.cleared.sorted() {
            let range = StorageKeys.Predictions.modelRange(shard: shard, generation: generation, model: model)
            batch.deleteRange(from: range.start, to: range.end, in: store.predictions)
        }
        for model in changed.sorted() {
            guard let liveFrom = models.predictionsLiveFrom(model), liveFrom > 0 else { continue }
            batch.deleteRange(
                from: StorageKeys.Predictions.epochStart(shard: shard, generation: generation, model: model, epoch: 0),
                to: StorageKeys.Predictions.epochStart(
                    shard: shard, generation: generation, model: model, epoch: liveFrom),
                in: store.predictions)
        }
        for (model, records) in taken.staged {
            let liveFrom = models.predictionsLiveFrom(model) ?? 0
            for (id, staged) in records where staged.epoch >= liveFrom {
                batch.put(
                    StorageKeys.Predictions.key(
                        shard: shard, generation: generation, model: model, epoch: staged.epoch, id: id),
                    try encode(staged.record), in: store.predictions)
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
