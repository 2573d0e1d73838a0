import ArgumentParser
import Foundation
import Monitoring
import Tabular

struct DriftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift",
        abstract: "Compare two files offline: per-column drift between a reference and a current dataset.",
        discussion: """
            Both files are streamed once into mergeable profiles (bounded memory), then compared.
            A column is numeric when every non-empty value parses as a number, categorical otherwise.
            `auto` uses KS (numeric) or chi-square (categorical) p-values below 1,000 rows and
            Wasserstein distance (normalised by the reference std) or Jensen-Shannon distance above;
            docs/drift.md gives every formula and threshold.
            """
    )

    @Option(help: "Reference (baseline) file, .csv or .jsonl.")
    var reference: String

    @Option(help: "Current file to check, .csv or .jsonl.")
    var current: String

    @Option(help: "Comma-separated columns to compare (default: all).")
    var columns: String?

    @Option(help: "auto, ks, psi, js, wasserstein, chi2 or hellinger.")
    var method = "auto"

    @Option(
        name: .customLong("max-line-bytes"),
        help: "Longest line accepted, in bytes (default 1 MiB); a longer one is an error.")
    var maxLineBytes = TabularReaderSettings().maxLineBytes

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard maxLineBytes > 0 else { throw ValidationError("--max-line-bytes must be positive") }
        guard DriftMethod(rawValue: method) != nil else {
            throw ValidationError(
                "--method must be one of \(DriftMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let selected = columns.map { Set($0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) }
        let started = Date()
        // The two files are independent: profile them at the same time, one core each.
        let referencePath = reference
        let currentPath = current
        var settings = TabularReaderSettings()
        settings.maxLineBytes = maxLineBytes
        async let referenceTask = Task.detached { [settings] in
            try Self.profile(referencePath, selected: selected, settings: settings)
        }.value
        async let currentTask = Task.detached { [settings] in
            try Self.profile(currentPath, selected: selected, settings: settings)
        }.value
        let (referenceColumns, referenceProfiles) = try await referenceTask
        let (currentColumns, currentProfiles) = try await currentTask
        if let selected {
            let known = Set(referenceProfiles.map(\.name))
            let unknown = selected.subtracting(known).sorted()
            guard unknown.isEmpty else {
                throw CLIError("--columns names \(unknown.joined(separator: ", ")), not in \(reference)")
            }
        }
        let report = DriftReport.compute(
            reference: referenceProfiles, current: currentProfiles, method: DriftMethod(rawValue: method) ?? .auto)
        guard !report.columns.isEmpty else {
            let which = selected == nil ? "" : " of those selected by --columns"
            throw CLIError(
                "\(reference) and \(current) share no column\(which) to compare; reference columns: \(Self.list(referenceColumns)); current columns: \(Self.list(currentColumns))"
            )
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            try printJSON(DriftJSON(report, reference: reference, current: current, seconds: seconds))
            return
        }
        print(
            "drift of \(current) against \(reference): \(report.driftedCount) of \(report.columns.count) columns drift (share \(report.driftShare.short))\(report.datasetDrift ? " - dataset drift" : "")"
        )
        let header = ["column", "type", "method", "score", "threshold", "drift", "ks", "psi", "js", "wasserstein"]
        var rows = [header]
        for column in report.columns {
            rows.append([
                column.name, column.type.rawValue, column.method.rawValue, column.score.map(\.short) ?? "-",
                column.threshold.short, column.drift ? "YES" : "no", column.ks.map(\.short) ?? "-",
                column.psi.map(\.short) ?? "-", column.js.map(\.short) ?? "-", column.wasserstein.map(\.short) ?? "-",
            ])
        }
        printTable(rows)
        if !report.onlyInReference.isEmpty {
            print("only in reference: \(report.onlyInReference.joined(separator: ", "))")
        }
        if !report.onlyInCurrent.isEmpty { print("only in current: \(report.onlyInCurrent.joined(separator: ", "))") }
    }

    /// Up to `limit` names (each cut at 40 characters), then how many more there are.
    static func list(_ names: [String], limit: Int = 8) -> String {
        let shown = names.prefix(limit).map { $0.count > 40 ? "\($0.prefix(40))…" : $0 }
        let more = names.count > limit ? ", … (\(names.count - limit) more)" : ""
        return names.isEmpty ? "(none)" : shown.joined(separator: ", ") + more
    }

    /// Streams `path` into one profile per column; returns every column name of the file too.
    static func profile(
        _ path: String, selected: Set<String>?, settings: TabularReaderSettings
    ) throws -> (columns: [String], profiles: [ColumnProfile]) {
        let reader: TabularReader
        do {
            reader = try TabularReader(path: path, settings: settings)
        } catch {
            throw CLIError("cannot read \(error.description)")
        }
        // One builder per column (nil for columns not selected); JSON Lines may add columns late.
        var builders: [ColumnProfileBuilder?] = []
        func coverNewColumns() {
            while builders.count < reader.columns.count {
                let name = reader.columns[builders.count]
                builders.append(selected.map { $0.contains(name) } ?? true ? ColumnProfileBuilder(name: name) : nil)
            }
        }
        do throws(TabularError) {
            while let row = try reader.nextRow() {
                coverNewColumns()
                for index in row.indices where builders[index] != nil {
                    switch row[index] {
                    case .missing: builders[index]!.addMissing()
                    case .number(let x): builders[index]!.add(number: x)
                    case .string(let s): builders[index]!.add(string: s)
                    case .bool(let b): builders[index]!.add(bool: b)
                    }
                }
            }
        } catch {
            throw CLIError(error.description)
        }
        coverNewColumns()
        return (reader.columns, builders.compactMap { $0?.build() })
    }
}

struct DriftJSON: Encodable {
    struct Column: Encodable {
        var name: String
        var type: String
        var method: String
        var score: Double?
        var threshold: Double
        var drift: Bool
        var reference_count: UInt64
        var current_count: UInt64
        var ks: Double?
        var ks_pvalue: Double?
        var psi: Double?
        var js: Double?
        var wasserstein: Double?
        var hellinger: Double?
        var chi2: Double?
        var chi2_pvalue: Double?
        var unseen_share: Double?
        var note: String?
    }

    var reference: String
    var current: String
    var columns: [Column]
    var drift_share: Double
    var drifted_columns: Int
    var dataset_drift: Bool
    var only_in_reference: [String]
    var only_in_current: [String]
    var seconds: Double

    init(_ report: DriftReport, reference: String, current: String, seconds: Double) {
        self.reference = reference
        self.current = current
        self.seconds = seconds
        drift_share = report.driftShare
        drifted_columns = report.driftedCount
        dataset_drift = report.datasetDrift
        only_in_reference = report.onlyInReference
        only_in_current = report.onlyInCurrent
        columns = report.columns.map { c in
            Column(
                name: c.name, type: c.type.rawValue, method: c.method.rawValue, score: c.score, threshold: c.threshold,
                drift: c.drift, reference_count: c.referenceCount, current_count: c.currentCount, ks: c.ks,
                ks_pvalue: c.ksPValue, psi: c.psi, js: c.js, wasserstein: c.wasserstein, hellinger: c.hellinger,
                chi2: c.chi2, chi2_pvalue: c.chi2PValue, unseen_share: c.unseenShare, note: c.note)
        }
    }
}

/// Prints rows as left-aligned columns separated by two spaces.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
    }
    printTable(rows, widths: widths)
}

/// Prints rows with the given column widths (a longer cell pushes its line's later columns right).
func printTable(_ rows: [[String]], widths: [Int]) {
    for row in rows {
        let line = row.enumerated().map { i, cell in
            i == row.count - 1 ? cell : cell.padding(toLength: max(widths[i], cell.count), withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
        print(line)
    }
}
