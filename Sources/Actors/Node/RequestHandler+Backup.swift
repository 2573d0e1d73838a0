import Foundation
import Wire

/// `backup` (peer-only): RocksDB's checkpoint of the node's database into
/// `<data-dir>/backups/<name>` (docs/operations.md, "Backups").
extension RequestHandler {
    func serveBackup(_ backup: Infranaut_V1_BackupRequest) async -> Infranaut_V1_BackupResponse {
        func refused(_ code: Infranaut_V1_StatusCode, _ message: String) -> Infranaut_V1_BackupResponse {
            .with { $0.status = Infranaut_V1_Status(code: code, message: message) }
        }
        let name = backup.name
        guard !name.isEmpty, name.utf8.count <= 64, name != ".", name != "..",
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "_" || $0 == "-") })
        else {
            return refused(
                .invalidArgument, "backup.name must be 1 to 64 characters of letters, digits, '.', '_' or '-'")
        }
        guard let takeBackup else { return refused(.unavailable, "this node cannot make backups") }
        let directory = settings.dataDirectory + "/backups"
        let path = directory + "/" + name
        guard !FileManager.default.fileExists(atPath: path) else {
            return refused(.invalidArgument, "\(path) exists already; choose another name or remove it")
        }
        let started = ContinuousClock.now
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try await takeBackup(path)
        } catch {
            return refused(.internal, "the checkpoint into \(path) failed: \(error)")
        }
        let took = ContinuousClock.now - started
        logger.notice("backup made", metadata: ["path": "\(path)", "took": "\(took)"])
        return .with {
            $0.status = .ok
            $0.path = path
            $0.bytes = UInt64(OperationsHTTP.directoryBytes(path))
            $0.tookMs = Int64(took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000)
        }
    }
}
