import Wire

extension Drill {
    /// Checks every key the client sent against the receipts the cluster holds.
    static func audit(batches: [SentBatch], models: [String], asking nodes: [String], into report: inout DrillReport)
        async throws
    {
        report.batchesSent = batches.count
        let acknowledged = batches.filter { $0.acknowledged != nil }
        report.batchesAcknowledged = acknowledged.count
        report.recordsAcknowledged = acknowledged.reduce(0) { $0 + $1.rows }
        report.batchesUnresolved = batches.count - acknowledged.count
        let byModel = Dictionary(grouping: batches, by: \.model)
        for model in models {
            let sent = byModel[model] ?? []
            guard !sent.isEmpty else { continue }
            var known: Set<String> = []
            var totals: Set<[UInt64]> = []
            var modelBatches: UInt64 = 0
            var modelRows: UInt64 = 0
            // A batch whose answer never came (unresolved) may still be committed after the load
            // stopped: it sits in a log that a new leader commits. Read until two passes over the
            // model's receipts agree (at most five), so the audit compares one state.
            for pass in 0..<5 {
                known = []
                totals = []
                try await readReceipts(
                    model: model, sent: sent, asking: nodes[0], known: &known, totals: &totals,
                    modelBatches: &modelBatches, modelRows: &modelRows)
                if totals.count == 1 || pass == 4 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            if totals.count > 1 {
                report.problems.append(
                    "\(model): its counts changed while the audit read them (\(totals.count) different totals); the load had not stopped"
                )
            }
            let lost = sent.filter { $0.acknowledged != nil && !known.contains($0.key) }
            let heldRows = sent.filter { known.contains($0.key) }.reduce(0) { $0 + $1.rows }
            let extraBatches = Int(modelBatches) - known.count
            let extraRows = Int(modelRows) - heldRows
            // Rows missing although every key has its receipt are lost as well; rows beyond the
            // receipts are duplicates. (A loss and a duplicate of equal size in one model would
            // cancel in the counts; they still show in `extraBatches` only if batch counts differ.)
            report.recordsLost += lost.reduce(0) { $0 + $1.rows } + max(0, -extraRows)
            report.recordsDuplicated += max(0, extraRows)
            if !lost.isEmpty {
                report.problems.append("\(model): \(lost.count) acknowledged batch(es) missing, e.g. \(lost[0].key)")
            }
            if extraBatches != 0 || extraRows != 0 {
                report.problems.append(
                    "\(model): the cluster holds \(modelBatches) batches / \(modelRows) rows, but receipts account for \(known.count) / \(heldRows)"
                )
            }
        }
    }

    /// One pass over `model`'s receipts for every key sent, in requests of at most the key limit.
    private static func readReceipts(
        model: String, sent: [SentBatch], asking node: String, known: inout Set<String>, totals: inout Set<[UInt64]>,
        modelBatches: inout UInt64, modelRows: inout UInt64
    ) async throws {
        for start in stride(from: 0, to: sent.count, by: Infranaut_V1_ReceiptsRequest.maxKeys) {
            let keys = sent[start..<min(sent.count, start + Infranaut_V1_ReceiptsRequest.maxKeys)].map(\.key)
            var reply: Infranaut_V1_ReceiptsResponse?
            try await waitUntil(timeout: .seconds(60), "receipts for \(model)") {
                let response = try await ask(
                    node,
                    .receipts(
                        .with {
                            $0.modelID = model
                            $0.idempotencyKeys = keys
                        }), timeout: .seconds(10))
                guard case .receipts(let receipts) = response.body, receipts.status.code == .ok else {
                    return false
                }
                reply = receipts
                return true
            }
            guard let reply else { continue }
            known.formUnion(reply.receipts.map(\.idempotencyKey))
            modelBatches = reply.modelBatches
            modelRows = reply.modelRows
            totals.insert([reply.modelBatches, reply.modelRows])
        }
    }
}
