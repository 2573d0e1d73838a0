import Cluster
import Specs
import SwiftProtobuf
import Wire

/// `apply_documents`: a spec file's text, read and applied by the node as `infranaut apply` does,
/// for clients that do not read YAML themselves (docs/protocol.md, "Applying spec files").
extension RequestHandler {
    /// Text one request may carry (the CLI's own limit for a spec file).
    static let maxDocumentBytes = 4 << 20
    /// Problems one answer lists at most (the message says how many there are).
    static let maxListedProblems = 100

    func serveApplyDocuments(
        _ apply: Infranaut_V1_ApplyDocumentsRequest, request: Infranaut_V1_Request, deadline: RequestDeadline
    ) async -> Infranaut_V1_Response {
        func answer(_ reply: Infranaut_V1_ApplyDocumentsResponse) -> Infranaut_V1_Response {
            .with { $0.applyDocuments = reply }
        }
        guard apply.yaml.utf8.count <= Self.maxDocumentBytes else {
            return answer(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .tooLarge,
                        message:
                            "apply_documents.yaml is \(apply.yaml.utf8.count) bytes; the limit is \(Self.maxDocumentBytes)"
                    )
                })
        }
        if let refused = SpecTextBounds.problem(apply.yaml) {
            return answer(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument, message: "\(refused.description); nothing was applied")
                    $0.problems = [refused.wire]
                })
        }
        // Every document is read and checked before anything is applied: a file with any problem
        // changes nothing. The node's own limits are checked again where each object is applied.
        let (objects, problems) = SpecDocuments.read(apply.yaml)
        guard problems.isEmpty else {
            return answer(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message:
                            "the file has \(problems.count) problem\(problems.count == 1 ? "" : "s"); nothing was applied: "
                            + problems.prefix(10).map(\.description).joined(separator: "; "))
                    // Bounded: a 4 MiB file of unknown keys would otherwise answer with 400,000.
                    $0.problems = problems.prefix(Self.maxListedProblems).map(\.wire)
                })
        }
        if let object = objects.first(where: { if case .alertDefaults = $0.body { true } else { false } }) {
            return answer(
                .with {
                    $0.status = Infranaut_V1_Status(
                        code: .invalidArgument,
                        message:
                            "line \(object.line): AlertDefaults is a node setting (start --alert-defaults), not applied; nothing was applied"
                    )
                })
        }
        var reply = Infranaut_V1_ApplyDocumentsResponse()
        for object in objects {
            switch object.body {
            case .model(let spec):
                let one = Infranaut_V1_ApplyModelRequest.with {
                    $0.spec = spec
                    $0.dryRun = apply.dryRun
                }
                // The model's apply is routed like `apply_model`: its own request, so that a
                // forward to the shard's leader carries it alone.
                var single = request
                single.applyModel = one
                let bytes: [UInt8]
                do {
                    bytes = try single.serializedBytes()
                } catch {
                    reply.status = Infranaut_V1_Status(code: .internal, message: "cannot encode the apply: \(error)")
                    return answer(reply)
                }
                let served = await serveApplyModel(one, request: single, bytes: bytes, deadline: deadline)
                let applied = served.applyModel
                guard served.outcome.code == .ok else {
                    reply.status = served.outcome
                    reply.status.message = "model/\(spec.name): " + served.outcome.message
                    reply.problems = applied.problems.map { problem in
                        var placed = problem
                        placed.line = UInt32(clamping: object.line(of: problem.path))
                        return placed
                    }
                    return answer(reply)
                }
                reply.objects.append(
                    .with {
                        $0.kind = "Model"
                        $0.name = spec.name
                        $0.outcome =
                            switch applied.outcome {
                            case .created: "created"
                            case .configured: "configured"
                            default: "unchanged"
                            }
                        $0.generation = applied.generation
                    })
            case .channel(let channel):
                if !apply.dryRun {
                    let served = await serveApplyChannel(.with { $0.channel = channel }, deadline: deadline)
                    guard served.outcome.code == .ok else {
                        reply.status = served.outcome
                        reply.status.message = "channel/\(channel.name): " + served.outcome.message
                        reply.problems = served.applyChannel.problems
                        return answer(reply)
                    }
                }
                reply.objects.append(
                    .with {
                        $0.kind = "NotificationChannel"
                        $0.name = channel.name
                        $0.outcome = apply.dryRun ? "checked" : "applied"
                    })
            case .alertDefaults:
                continue
            }
        }
        reply.status = .ok
        return answer(reply)
    }
}

extension SpecProblem {
    var wire: Infranaut_V1_SpecProblem {
        .with {
            $0.path = path
            $0.message = message
            $0.line = UInt32(clamping: line ?? 0)
        }
    }
}
