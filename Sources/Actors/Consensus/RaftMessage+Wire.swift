public import Cluster
import Foundation
public import Wire

/// Conversions between the Raft core's types and their protobuf frames. Decoding rejects a frame
/// with a missing part, naming what was missing.
extension RaftEntry {
    public var wire: Infranaut_V1_RaftLogEntry {
        .with {
            $0.term = term
            $0.index = index
            switch body {
            case .noop: $0.noop = true
            case .command(let bytes): $0.command = Data(bytes)
            case .configuration(let voters): $0.configuration = .with { $0.voters = voters.map(\.rawValue).sorted() }
            }
        }
    }

    public init(wire: Infranaut_V1_RaftLogEntry) throws(WireError) {
        let body: Body
        switch wire.body {
        case .noop: body = .noop
        case .command(let bytes): body = .command(Array(bytes))
        case .configuration(let set): body = .configuration(Set(set.voters.map { NodeID($0) }))
        case .none: throw .invalid("raft entry \(wire.index) (term \(wire.term)) has no body")
        }
        guard wire.index > 0 else { throw .invalid("raft entry with index 0") }
        self.init(term: wire.term, index: wire.index, body: body)
    }
}

extension RaftMessage {
    public var wire: Infranaut_V1_RaftMessage {
        .with {
            $0.from = from.rawValue
            $0.term = term
            switch payload {
            case .preVote(let lastIndex, let lastTerm):
                $0.preVote = .with {
                    $0.lastIndex = lastIndex
                    $0.lastTerm = lastTerm
                }
            case .preVoteResponse(let granted): $0.preVoteResponse = granted
            case .requestVote(let lastIndex, let lastTerm, let transfer):
                $0.requestVote = .with {
                    $0.lastIndex = lastIndex
                    $0.lastTerm = lastTerm
                    $0.transfer = transfer
                }
            case .voteResponse(let granted): $0.voteResponse = granted
            case .append(let prevIndex, let prevTerm, let entries, let commit):
                $0.append = .with {
                    $0.prevIndex = prevIndex
                    $0.prevTerm = prevTerm
                    $0.entries = entries.map(\.wire)
                    $0.commit = commit
                }
            case .appendResponse(let success, let index, let rejectedPrev):
                $0.appendResponse = .with {
                    $0.success = success
                    $0.index = index
                    $0.rejectedPrev = rejectedPrev
                }
            case .timeoutNow: $0.timeoutNow = true
            case .quiesce(let lastIndex, let lastTerm, let commit):
                $0.quiesce = .with {
                    $0.lastIndex = lastIndex
                    $0.lastTerm = lastTerm
                    $0.commit = commit
                }
            }
        }
    }

    public init(wire: Infranaut_V1_RaftMessage) throws(WireError) {
        guard !wire.from.isEmpty else { throw .invalid("raft message without sender") }
        let payload: Payload
        switch wire.payload {
        case .preVote(let ask): payload = .preVote(lastIndex: ask.lastIndex, lastTerm: ask.lastTerm)
        case .preVoteResponse(let granted): payload = .preVoteResponse(granted: granted)
        case .requestVote(let ask):
            payload = .requestVote(lastIndex: ask.lastIndex, lastTerm: ask.lastTerm, transfer: ask.transfer)
        case .voteResponse(let granted): payload = .voteResponse(granted: granted)
        case .append(let append):
            var entries: [RaftEntry] = []
            entries.reserveCapacity(append.entries.count)
            var expected = append.prevIndex + 1
            for entry in append.entries {
                let decoded = try RaftEntry(wire: entry)
                guard decoded.index == expected else {
                    throw .invalid("raft append from \(wire.from): entry \(decoded.index) where \(expected) was due")
                }
                entries.append(decoded)
                expected += 1
            }
            payload = .append(
                prevIndex: append.prevIndex, prevTerm: append.prevTerm, entries: entries, commit: append.commit)
        case .appendResponse(let response):
            payload = .appendResponse(
                success: response.success, index: response.index, rejectedPrev: response.rejectedPrev)
        case .timeoutNow: payload = .timeoutNow
        case .quiesce(let quiet):
            payload = .quiesce(lastIndex: quiet.lastIndex, lastTerm: quiet.lastTerm, commit: quiet.commit)
        case .none: throw .invalid("raft message from \(wire.from) has no payload")
        }
        self.init(from: NodeID(wire.from), term: wire.term, payload: payload)
    }
}

extension RaftSnapshotMeta {
    public var wire: Infranaut_V1_RaftSnapshotMeta {
        .with {
            $0.index = index
            $0.term = term
            $0.voters = voters.map(\.rawValue).sorted()
        }
    }

    public init(wire: Infranaut_V1_RaftSnapshotMeta) throws(WireError) {
        guard wire.index > 0, !wire.voters.isEmpty else {
            throw .invalid("raft snapshot metadata without index or voters (index \(wire.index))")
        }
        self.init(index: wire.index, term: wire.term, voters: Set(wire.voters.map { NodeID($0) }))
    }
}
