import Foundation
import Synchronization

/// Files and directories the tests create under the temp dir, removed when the test process exits
/// normally. A node's or shard's RocksDB directory holds ~20 MB (a preallocated WAL), and a test
/// that restarts a node on the same directory cannot remove it when its first handle goes away,
/// so runs used to leave gigabytes behind.
enum TestScratch {
    private static let paths = Mutex<[String]>([])
    private static let removeAtExit: Void = { atexit { TestScratch.removeAll() } }()

    /// Registers `path` for removal at exit and returns it.
    @discardableResult
    static func track(_ path: String) -> String {
        _ = removeAtExit
        paths.withLock { $0.append(path) }
        return path
    }

    private static func removeAll() {
        // INFRANAUT_KEEP_TEST_FILES=1 keeps them (node logs are `<data dir>.log`), to read after a failure.
        guard getenv("INFRANAUT_KEEP_TEST_FILES") == nil else { return }
        for path in paths.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
