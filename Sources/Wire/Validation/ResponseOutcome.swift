extension Infranaut_V1_Response {
    /// The status that answers the request: the frame-level error when there is one, otherwise the
    /// status inside the body.
    public var outcome: Infranaut_V1_Status {
        switch body {
        case .error(let error): error
        case .ingest(let ingest): ingest.status
        case .status(let status): status.status
        case .members(let members): members.status
        case .ring(let ring): ring.status
        case .receipts(let receipts): receipts.status
        case .leave(let leave): leave.status
        case .publishEvent(let reply): reply.status
        case .events(let reply): reply.status
        case .deliverEvent(let reply): reply.status
        case .raft, .raftSnapshot: .ok
        case .fault(let reply): reply.status
        case .applyModel(let reply): reply.status
        case .getModel(let reply): reply.status
        case .deleteModel(let reply): reply.status
        case .listModels(let reply): reply.status
        case .windows(let reply): reply.status
        case .compare(let reply): reply.status
        case .explain(let reply): reply.status
        case .alerts(let reply): reply.status
        case .applyChannel(let reply): reply.status
        case .channels(let reply): reply.status
        case .silence(let reply): reply.status
        case .silences(let reply): reply.status
        case .applyDocuments(let reply): reply.status
        case .backup(let reply): reply.status
        case .none: Infranaut_V1_Status(code: .internal, message: "the node sent an empty response")
        }
    }
}
