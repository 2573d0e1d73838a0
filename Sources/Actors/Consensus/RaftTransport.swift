import Cluster
import Logging
import Synchronization
import Wire

/// Carries the Raft messages of every shard of this node to the other nodes, coalesced per node
/// pair: whatever the shards queued for one peer while the previous frame was on its way leaves in
/// the next single `raft` request. So a thousand groups heart-beating cost one frame per peer per
/// heartbeat interval, not a thousand, and under load the frames grow instead of multiplying.
///
/// Best effort, as Raft expects: a frame that fails or times out is dropped (Raft resends), and a
/// peer that stops answering holds at most `maxQueuedBytes` of messages, the oldest dropped first.
/// At most one frame per peer and lane is in flight, so a slow peer never gets a pile of requests
/// queued on its connection (what once stalled a healed partition for 90 s).
final class RaftTransport: RaftOutbound {
    struct Settings: Sendable {
        /// Largest frame (the first message is always sent, however large). Default 4 MiB.
        var maxFrameBytes = 4 << 20
        /// Messages kept for one peer while its frames are slow or failing. Default 64 MiB.
        var maxQueuedBytes = 64 << 20
        /// How long a frame may take before it counts as lost. Default 2 s.
        var sendTimeout: Duration = .seconds(2)
        /// How long one snapshot chunk (up to 4 MiB, installed on the last) may take. Default 10 s.
        var snapshotChunkTimeout: Duration = .seconds(10)
    }

    fileprivate struct Queued {
        var message: Infranaut_V1_RaftGroupMessage
        var bytes: Int
    }

    fileprivate struct PeerQueue {
        var messages: [Queued] = []
        var head = 0
        var bytes = 0
        var dropped = 0
        let wakeup = Wakeup()
    }

    /// Two lanes per peer, each with its own frame in flight: answers and elections are never
    /// stuck behind megabytes of entries. Appends (heartbeats included, which must not overtake
    /// the entries before them) take the data lane; everything else the control lane.
    fileprivate struct Lane: Hashable {
        var node: NodeID
        var data: Bool
    }

    private struct State {
        var peers: [Lane: PeerQueue] = [:]
        /// Lanes whose sender task has not been started yet.
        var unstarted: [Lane] = []
        var closed = false
    }

    private let settings: Settings
    private let peers: PeerClients
    private let addressOf: @Sendable (NodeID) async -> String?
    private let logger: Logger
    private let state = Mutex(State())
    private let newPeer = Wakeup()

    init(
        settings: Settings = Settings(), peers: PeerClients, logger: Logger,
        addressOf: @escaping @Sendable (NodeID) async -> String?
    ) {
        self.settings = settings
        self.peers = peers
        self.addressOf = addressOf
        self.logger = logger
    }

    /// Queues `message` of `shard`'s group for `node`. Never waits.
    func send(shard: Int, _ message: RaftMessage, to node: NodeID) {
        let item = Queued(
            message: .with {
                $0.shard = UInt32(shard)
                $0.message = message.wire
            },
            bytes: Self.estimatedBytes(message))
        var isData = false
        if case .append = message.payload { isData = true }
        let lane = Lane(node: node, data: isData)
        let (wakeup, isNew) = state.withLock { state -> (Wakeup?, Bool) in
            guard !state.closed else { return (nil, false) }
            let isNew = state.peers[lane] == nil
            if isNew { state.unstarted.append(lane) }
            state.peers[lane, default: PeerQueue()].append(item, limit: settings.maxQueuedBytes)
            return (state.peers[lane]?.wakeup, isNew)
        }
        if isNew { newPeer.signal() }
        wakeup?.signal()
    }

    /// Sends one snapshot chunk to `node` (outside the coalesced frames: chunks are large, and
    /// answered one by one). nil when no answer came within `snapshotChunkTimeout`.
    func sendSnapshotChunk(_ chunk: Infranaut_V1_RaftSnapshotChunk, to node: NodeID) async
        -> Infranaut_V1_RaftSnapshotChunkResponse?
    {
        guard let address = await addressOf(node), !address.isEmpty else { return nil }
        let request = Infranaut_V1_Request.with {
            $0.version = 1
            $0.hops = 1
            $0.raftSnapshot = chunk
        }
        guard let reply = try? await peers.call(request, to: address, timeout: settings.snapshotChunkTimeout),
            case .raftSnapshot(let answer) = reply.body
        else { return nil }
        return answer
    }

    /// Runs one sender per peer until the node shuts down.
    func run() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let started = state.withLock { state -> [(Lane, Wakeup)] in
                    defer { state.unstarted = [] }
                    return state.unstarted.compactMap { lane in state.peers[lane].map { (lane, $0.wakeup) } }
                }
                for (lane, wakeup) in started {
                    group.addTask { await self.sendLoop(on: lane, wakeup: wakeup) }
                }
                await newPeer.wait()
            }
            state.withLock { $0.closed = true }
        }
    }

    private func sendLoop(on lane: Lane, wakeup: Wakeup) async {
        while !Task.isCancelled {
            let frame = state.withLock { state in state.peers[lane]?.take(upTo: settings.maxFrameBytes) ?? [] }
            guard !frame.isEmpty else {
                await wakeup.wait()
                continue
            }
            await deliver(frame, to: lane.node)
        }
    }

    private func deliver(_ messages: [Infranaut_V1_RaftGroupMessage], to node: NodeID) async {
        guard let address = await addressOf(node), !address.isEmpty else { return }
        let request = Infranaut_V1_Request.with {
            $0.version = 1
            $0.hops = 1
            $0.raft = .with { $0.messages = messages }
        }
        do {
            let reply = try await peers.call(request, to: address, timeout: settings.sendTimeout)
            if case .raft(let answer) = reply.body, answer.dropped > 0 {
                logger.debug("peer dropped raft messages", metadata: ["to": "\(node)", "dropped": "\(answer.dropped)"])
            }
        } catch {
            logger.trace("raft frame lost", metadata: ["to": "\(node)", "error": "\(error)"])
        }
    }

    /// A cheap upper estimate of a message's encoded size: the entries' payloads dominate.
    static func estimatedBytes(_ message: RaftMessage) -> Int {
        guard case .append(_, _, let entries, _) = message.payload else { return 48 }
        var bytes = 64
        for entry in entries {
            switch entry.body {
            case .command(let command): bytes += command.count + 24
            case .configuration(let voters): bytes += voters.reduce(24) { $0 + $1.rawValue.utf8.count + 2 }
            case .noop: bytes += 24
            }
        }
        return bytes
    }
}

extension RaftTransport.PeerQueue {
    fileprivate mutating func append(_ item: RaftTransport.Queued, limit: Int) {
        messages.append(item)
        bytes += item.bytes
        while bytes > limit, head < messages.count - 1 {
            bytes -= messages[head].bytes
            head += 1
            dropped += 1
        }
    }

    /// The oldest messages, up to `maxBytes` (at least one).
    fileprivate mutating func take(upTo maxBytes: Int) -> [Infranaut_V1_RaftGroupMessage] {
        var taken: [Infranaut_V1_RaftGroupMessage] = []
        var size = 0
        while head < messages.count, taken.isEmpty || size + messages[head].bytes <= maxBytes {
            size += messages[head].bytes
            taken.append(messages[head].message)
            head += 1
        }
        bytes -= size
        if head == messages.count {
            messages.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1_024 && head * 2 > messages.count {
            messages.removeFirst(head)
            head = 0
        }
        return taken
    }
}
