import ArgumentParser
import Foundation
import Tabular
import Telemetry
import Wire

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send a CSV or JSON Lines file to a node as telemetry batches for one model.",
        discussion: """
            Each batch carries an idempotency key; a batch that fails with a retryable error is sent
            again with the same key, so it is applied exactly once. Values that do not fit a feature's
            established type are accepted as missing and counted as type mismatches; the first few
            are printed with their row and column.
            """
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Model id the telemetry belongs to.")
    var model: String

    @Option(help: "A .csv (with a header row) or .jsonl file.")
    var file: String

    @Option(name: .customLong("batch-size"), help: "Rows per batch.")
    var batchSize = 1_000

    @Option(name: .customLong("id-column"), help: "Column holding prediction ids (sent as ids, not as a feature).")
    var idColumn: String?

    @Option(name: .customLong("time-column"), help: "Column holding event times: Unix ms, or ISO 8601 text.")
    var timeColumn: String?

    @Option(name: .customLong("prediction-column"), help: "Column holding the model's prediction.")
    var predictionColumn: String?

    @Option(name: .customLong("label-column"), help: "Column holding the true label.")
    var labelColumn: String?

    @Option(help: "The model version the rows come from (default: the model's default version).")
    var version = ""

    @Flag(help: "The rows are the model's reference data for --version, not live traffic.")
    var reference = false

    @Option(name: .customLong("timeout-ms"), help: "Deadline per batch request (above the node's own 30 s).")
    var timeoutMs = 40_000

    @Option(
        name: .customLong("max-line-bytes"),
        help: "Longest line accepted, in bytes (default 1 MiB); a longer one is an error.")
    var maxLineBytes = TabularReaderSettings().maxLineBytes

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// Set by `infranaut labels`: the rows are labels for predictions sent earlier.
    @Flag(help: .hidden)
    var labels = false

    func validate() throws {
        if labels {
            guard idColumn != nil, labelColumn != nil else {
                throw ValidationError("labels need --id-column and --label-column")
            }
            guard !reference else { throw ValidationError("labels are not reference data") }
        }
        guard batchSize > 0 && batchSize <= 1_000_000 else {
            throw ValidationError("--batch-size must be between 1 and 1000000")
        }
        guard !model.isEmpty else { throw ValidationError("--model must not be empty") }
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes must be positive") }
    }

    struct Mismatch: Encodable {
        var row: Int
        var column: String
        var expected: String
        var value: String
    }

    struct Result: Encodable {
        var model: String
        var node: String
        var file: String
        var rows_accepted: UInt64
        var batches: Int
        var replayed_batches: Int
        var type_mismatch_count: UInt64
        var type_mismatches: [Mismatch]
        var seconds: Double
        /// For labels: what they did, summed over the batches.
        var labels: LabelTotals?
    }

    struct LabelTotals: Encodable {
        var joined: UInt64 = 0
        var unusable: UInt64 = 0
        var unknown_ids: UInt64 = 0
        var already_labelled: UInt64 = 0
        var missing: UInt64 = 0

        mutating func add(_ outcome: Infranaut_V1_LabelOutcome) {
            joined += outcome.joined
            unusable += outcome.unusable
            unknown_ids += outcome.unknownIds
            already_labelled += outcome.alreadyLabelled
            missing += outcome.missing
        }
    }

    func run() async throws {
        let reader: TabularReader
        var settings = TabularReaderSettings()
        settings.maxLineBytes = maxLineBytes
        do {
            reader = try TabularReader(path: file, settings: settings)
        } catch {
            throw CLIError("cannot read \(error.description)")
        }
        // The first row is read before dialing: a file without data fails before the network is used.
        var firstRow: [TabularCell]?
        do throws(TabularError) {
            firstRow = try reader.nextRow()
        } catch {
            throw CLIError(error.description)
        }
        let client = try NodeClient(address: node, timeout: .milliseconds(timeoutMs))
        defer { client.close() }
        let runID = UUID().uuidString.prefix(13).lowercased()
        let started = Date()
        var result = Result(
            model: model, node: node, file: file, rows_accepted: 0, batches: 0, replayed_batches: 0,
            type_mismatch_count: 0, type_mismatches: [], seconds: 0, labels: labels ? LabelTotals() : nil)
        var builder = BatchBuilder(
            model: model, idColumn: idColumn, timeColumn: timeColumn,
            predictionColumn: predictionColumn, labelColumn: labelColumn)
        var rowsRead = 0
        var lastProgress = Date()
        let interactive = isatty(STDERR_FILENO) != 0

        func flush() async throws {
            guard builder.rowCount > 0 else { return }
            let firstRow = rowsRead - builder.rowCount
            var batch: Infranaut_V1_TelemetryBatch
            do throws(BatchError) {
                batch = try builder.take(columns: reader.columns)
            } catch {
                let place = error.row.map { "\(file) row \(firstRow + $0 + 1): " } ?? ""
                throw CLIError(
                    "\(place)--\(error.role.rawValue)-column \(error.column): \(error.message) (\(result.rows_accepted) rows before it were accepted)"
                )
            }
            if labels {
                // Only the ids and the labels: the rest of the file stays here.
                batch.columns = batch.columns.filter { $0.name == labelColumn }
                batch.eventTimeUnixMs = []
                batch.labels = true
            }
            let request = Infranaut_V1_Request.with {
                $0.version = 1
                $0.ingest = .with {
                    $0.idempotencyKey = "\(labels ? "labels" : "push")-\(runID)-\(result.batches)"
                    $0.batch = batch
                    $0.batch.version = version
                    $0.batch.reference = reference
                }
            }
            let response = try await client.send(request)
            let status = response.outcome
            guard status.code == .ok else {
                let rows = "rows \(firstRow + 1)-\(firstRow + Int(batch.rowCount))"
                throw CLIError(
                    "\(node) rejected batch \(result.batches + 1) (\(rows) of \(file)); \(result.rows_accepted) rows were accepted before it: \(statusLine(status))"
                )
            }
            let ingest = response.ingest
            result.labels?.add(ingest.labels)
            result.batches += 1
            result.rows_accepted += ingest.rowsAccepted
            if ingest.replayed { result.replayed_batches += 1 }
            result.type_mismatch_count += ingest.typeMismatchCount
            for mismatch in ingest.typeMismatches where result.type_mismatches.count < 10 {
                result.type_mismatches.append(
                    Mismatch(
                        row: firstRow + Int(mismatch.row) + 1, column: mismatch.column,
                        expected: mismatch.expected, value: mismatch.value))
            }
            if Date().timeIntervalSince(lastProgress) >= 1 {
                lastProgress = Date()
                let rate = Double(result.rows_accepted) / max(Date().timeIntervalSince(started), 0.001)
                let line = "pushed \(result.rows_accepted) rows in \(result.batches) batches (\(Int(rate)) rows/s)"
                FileHandle.standardError.write(Data((interactive ? "\r\(line)" : line + "\n").utf8))
            }
        }

        while true {
            let row: [TabularCell]?
            do throws(TabularError) {
                if let first = firstRow {
                    row = first
                    firstRow = nil
                } else {
                    row = try reader.nextRow()
                }
            } catch {
                // Rows before the bad one were sent; say so, and send nothing more.
                throw CLIError("\(error.description) (\(result.rows_accepted) rows before it were accepted)")
            }
            guard let row else { break }
            builder.append(row)
            rowsRead += 1
            if builder.rowCount >= batchSize { try await flush() }
        }
        try await flush()
        if interactive && result.batches > 0 && Date().timeIntervalSince(started) >= 1 {
            FileHandle.standardError.write(Data("\n".utf8))
        }
        result.seconds = Date().timeIntervalSince(started)

        if json {
            try printJSON(result)
            return
        }
        if let totals = result.labels {
            print(
                "\(result.rows_accepted) labels for model \(model) in \(result.batches) batches: \(totals.joined) joined (\(totals.unusable) unusable for the task), \(totals.unknown_ids) unknown ids, \(totals.already_labelled) already labelled, \(totals.missing) missing"
            )
        } else {
            print(
                "accepted \(result.rows_accepted) rows in \(result.batches) batches for model \(model) (\(String(format: "%.2f", result.seconds)) s)"
            )
        }
        if result.replayed_batches > 0 {
            print("\(result.replayed_batches) batches had already been applied (idempotent retries)")
        }
        if result.type_mismatch_count > 0 {
            print(
                "\(result.type_mismatch_count) values did not fit their feature's type and were counted as type mismatches:"
            )
            for m in result.type_mismatches {
                print("  row \(m.row), column \(m.column): expected \(m.expected), got \"\(m.value)\"")
            }
        }
    }
}

struct LabelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labels",
        abstract: "Send true labels for predictions sent earlier, joined by prediction id.",
        discussion: """
            Each label joins the prediction the model's shard kept under its id (for
            spec.retention.predictions, 7 days by default) and counts in the performance of the
            window, and segments, that prediction counted in, open or closed. The answer counts
            labels joined, ids with no kept prediction, and ids already labelled (never applied
            twice). Batches carry idempotency keys and are retried like push's.
            """
    )

    @Option(help: "Node client address.")
    var node = "tcp://127.0.0.1:7400"

    @Option(help: "Model id the predictions belong to.")
    var model: String

    @Option(help: "A .csv (with a header row) or .jsonl file.")
    var file: String

    @Option(name: .customLong("id-column"), help: "Column holding the prediction ids.")
    var idColumn: String

    @Option(name: .customLong("label-column"), help: "Column holding the true labels.")
    var labelColumn: String

    @Option(name: .customLong("batch-size"), help: "Labels per batch.")
    var batchSize = 1_000

    @Option(name: .customLong("timeout-ms"), help: "Deadline per batch request.")
    var timeoutMs = 40_000

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() async throws {
        var arguments = [
            "--node", node, "--model", model, "--file", file, "--id-column", idColumn, "--label-column", labelColumn,
            "--batch-size", "\(batchSize)", "--timeout-ms", "\(timeoutMs)", "--labels",
        ]
        if json { arguments.append("--json") }
        let push = try PushCommand.parse(arguments)
        try await push.run()
    }
}
