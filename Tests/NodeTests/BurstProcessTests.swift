import Cluster
import Drill
import Foundation
import Testing

@Suite("a burst of clients", .serialized, .timeLimit(.minutes(3)))
struct BurstProcessTests {
    /// Before the peer listener existed, a burst through a follower deadlocked for seconds: the
    /// follower's contexts were all held by requests forwarded to the primary, which waited on
    /// replication to that same follower, which had no context left to receive it.
    @Test(
        "150 clients sending at the same instant through the leader, a follower and a non-replica are acknowledged on the first try"
    )
    func burstThroughEveryRole() async throws {
        let nodes = try await startCluster(["b1", "b2", "b3", "b4"])
        let model = "burst-test-model"
        let roles = try await replicaRoles(of: model, asking: nodes[0].address)
        let targets = [("leader", roles.primary), ("follower", roles.follower), ("non-replica", roles.other)]
        for (name, address) in targets {
            let address = try #require(address, "a 4-node cluster with replication factor 3 has a \(name)")
            let report = try await runBurst(address: address, model: model, clients: 150, keyPrefix: name)
            #expect(report.failed == 0, "through the \(name): \(report)")
            #expect(report.firstTryRatio >= 0.99, "through the \(name): \(report)")
        }
        // Every batch was applied exactly once: 450 keys, one row each.
        let reader = try RequestClient(dial: nodes[0].address)
        defer { reader.close() }
        #expect(try await call(reader, statusRequest(model)).status.model.rows == 450)
    }
}
