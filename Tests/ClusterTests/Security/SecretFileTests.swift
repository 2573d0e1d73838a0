import Cluster
import Foundation
import Testing

private func temporaryDirectory() throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-secret-\(UUID().uuidString)")
        .path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("cluster secret files")
struct SecretFileTests {
    @Test("a new secret file is mode 0600, is not overwritten, and reads back as a usable secret")
    func createOnce() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cluster-secret"
        #expect(try ClusterSecret.createFile(at: path))
        let first = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(first.count == 65)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try ClusterSecret.createFile(at: path) == false)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == first)
        _ = try ClusterSecret(file: path)
    }

    @Test("a secret file that cannot be read or written is an error saying why")
    func reasons() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let missing = try #require(throws: SecretError.self) { try ClusterSecret(file: dir + "/absent") }
        #expect(missing.description == "cannot read the cluster secret file \(dir)/absent: No such file or directory")
        let directory = try #require(throws: SecretError.self) { try ClusterSecret(file: dir) }
        #expect(directory.description == "cannot read the cluster secret file \(dir): Is a directory")
        let noParent = try #require(throws: SecretError.self) {
            try ClusterSecret.createFile(at: dir + "/no/such/dir/secret")
        }
        #expect(
            noParent.description
                == "cannot write a new cluster secret to \(dir)/no/such/dir/secret: No such file or directory")
        try Data("short\n".utf8).write(to: URL(fileURLWithPath: dir + "/short"))
        let short = try #require(throws: SecretError.self) { try ClusterSecret(file: dir + "/short") }
        #expect(short.description == "the cluster secret from \(dir)/short has 5 bytes; it needs at least 16")
    }
}
