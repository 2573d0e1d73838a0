import Cluster
import Logging
import Testing

@Suite("fault rules")
struct FaultRulesTests {
    private let now = ContinuousClock.now

    @Test("drop and delay apply to the named nodes until the rules expire, and to no other node")
    func lookups() throws {
        var rules = FaultRules()
        try rules.set(
            drop: ["n2", "n3"], delay: ["n4"], delayBy: .milliseconds(250), lifetime: .seconds(30), myself: "n1",
            now: now)
        #expect(rules.fault(for: "n2", now: now) == .drop)
        #expect(rules.fault(for: "n3", now: now + .seconds(29)) == .drop)
        #expect(rules.fault(for: "n4", now: now) == .delay(.milliseconds(250)))
        #expect(rules.fault(for: "n5", now: now) == nil)
        #expect(rules.remaining(now: now + .seconds(10)) == .seconds(20))
        #expect(!rules.hasExpired(now: now + .seconds(29)))
        #expect(rules.hasExpired(now: now + .seconds(30)))
        #expect(rules.fault(for: "n2", now: now + .seconds(30)) == nil)
        rules.clear()
        #expect(rules.fault(for: "n2", now: now) == nil)
        #expect(!rules.hasExpired(now: now + .seconds(3_600)))
    }

    @Test("rules set without a lifetime last 10 minutes; a new set replaces the old one")
    func defaultsAndReplacement() throws {
        var rules = FaultRules()
        try rules.set(drop: ["n2"], delay: [], delayBy: .zero, lifetime: nil, myself: "n1", now: now)
        #expect(rules.remaining(now: now) == .seconds(600))
        try rules.set(drop: ["n3"], delay: [], delayBy: .zero, lifetime: .seconds(5), myself: "n1", now: now)
        #expect(rules.fault(for: "n2", now: now) == nil)
        #expect(rules.fault(for: "n3", now: now) == .drop)
    }

    @Test(
        "a request that names no node, this node, a node twice, a bad delay or lifetime is refused, naming why, and changes nothing",
        arguments: [
            (drop: [String](), delay: [String](), delayMs: 0, lifetime: 60, says: "names no node"),
            (drop: ["n1"], delay: [], delayMs: 0, lifetime: 60, says: "cannot cut itself off"),
            (drop: ["n2"], delay: ["n2"], delayMs: 100, lifetime: 60, says: "names n2 twice"),
            (drop: ["n2", "n2"], delay: [], delayMs: 0, lifetime: 60, says: "names n2 twice"),
            (drop: [""], delay: [], delayMs: 0, lifetime: 60, says: "1 to 255 bytes"),
            (drop: [String(repeating: "x", count: 256)], delay: [], delayMs: 0, lifetime: 60, says: "1 to 255 bytes"),
            (drop: ["n2"], delay: [], delayMs: 100, lifetime: 60, says: "names no node to delay"),
            (
                drop: [], delay: ["n2"], delayMs: 0, lifetime: 60,
                says: "delays by 0 ms; the delay must be 1 to 10000 ms"
            ),
            (drop: [], delay: ["n2"], delayMs: 10_001, lifetime: 60, says: "1 to 10000 ms"),
            (drop: ["n2"], delay: [], delayMs: 0, lifetime: 3_601, says: "would last 3601000 ms"),
            (drop: (0...1_024).map { "n\($0 + 2)" }, delay: [], delayMs: 0, lifetime: 60, says: "at most 1024"),
        ])
    func refusals(drop: [String], delay: [String], delayMs: Int, lifetime: Int, says: String) throws {
        var rules = FaultRules()
        try rules.set(drop: ["n9"], delay: [], delayBy: .zero, lifetime: .seconds(60), myself: "n1", now: now)
        let before = rules
        let error = #expect(throws: FaultRulesError.self) {
            try rules.set(
                drop: drop, delay: delay, delayBy: .milliseconds(delayMs), lifetime: .seconds(lifetime), myself: "n1",
                now: now)
        }
        #expect(error?.description.contains(says) == true, "\(error?.description ?? "no error")")
        #expect(rules == before)
    }

    @Test("the injector finds a frame's node by sealed sender or by any address a member announced")
    func injectorLookups() throws {
        let injector = FaultInjector(myself: "n1", logger: Logger(label: "test.faults"))
        #expect(injector.fault(from: "n2") == nil)
        injector.learn(addresses: [
            "tcp://127.0.0.1:9001": "n2", "tcp://127.0.0.1:9002": "n2", "tcp://127.0.0.1:9003": "n3",
        ])
        try injector.set(drop: ["n2"], delay: ["n3"], delayBy: .milliseconds(40), lifetime: .seconds(60), by: "test")
        #expect(injector.fault(from: "n2") == .drop)
        #expect(injector.fault(from: "admin-42") == nil)
        #expect(injector.fault(to: "tcp://127.0.0.1:9001") == .drop)
        #expect(injector.fault(to: "tcp://127.0.0.1:9002") == .drop)
        #expect(injector.fault(to: "tcp://127.0.0.1:9003") == .delay(.milliseconds(40)))
        #expect(injector.fault(to: "tcp://127.0.0.1:9999") == nil)
        let counted = injector.snapshot
        #expect(counted.framesDropped == 3)
        #expect(counted.framesDelayed == 1)
        #expect(counted.faults == ["n2": .drop, "n3": .delay(.milliseconds(40))])
        let cleared = injector.clear(by: "test")
        #expect(cleared.faults.isEmpty && cleared.remaining == .zero)
        #expect(injector.fault(from: "n2") == nil)
    }

    @Test("expired rules stop applying at once and are cleared")
    func injectorExpiry() async throws {
        let injector = FaultInjector(myself: "n1", logger: Logger(label: "test.faults"))
        let set = ContinuousClock.now
        try injector.set(drop: ["n2"], delay: [], delayBy: .zero, lifetime: .milliseconds(50), by: "test")
        #expect(injector.fault(from: "n2") == .drop)
        while injector.fault(from: "n2") != nil, ContinuousClock.now - set < .seconds(5) {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(injector.fault(from: "n2") == nil)
        #expect(ContinuousClock.now - set >= .milliseconds(50), "the rules expired early")
        #expect(injector.snapshot.faults.isEmpty)
    }
}
