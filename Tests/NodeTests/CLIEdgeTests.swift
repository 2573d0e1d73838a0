import Foundation
import Testing

/// A temporary directory holding `files` (name → contents).
private func directory(_ files: [String: Data]) throws -> String {
    let dir = TestScratch.track(
        FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-cli-edge-\(UUID().uuidString)").path)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, contents) in files { try contents.write(to: URL(fileURLWithPath: dir + "/" + name)) }
    return dir
}

/// A loopback port nothing listens on: bound, read back, closed.
private func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw NodeTestError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw NodeTestError("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs the CLI and checks it failed with `status` and exactly one line on stderr; returns that line.
private func failure(_ arguments: [String], status: Int32 = 1) async throws -> String {
    let run = try await runCLI(arguments)
    #expect(run.status == status, "\(arguments): exit \(run.status), stderr \(run.stderr)")
    let lines = run.stderr.split(separator: "\n")
    #expect(lines.count == 1, "\(arguments): expected one line on stderr, got:\n\(run.stderr)")
    return lines.first.map(String.init) ?? ""
}

@Suite(
    "CLI edges: files without rows, binary files, node addresses, usage errors", .serialized, .timeLimit(.minutes(2)))
struct CLIEdgeTests {
    // No node listens on these; file errors must come before the network is used.
    let nowhere = "tcp://127.0.0.1:1"

    @Test("push of a file with no rows (empty, header only) fails with exit 1 and says so")
    func noRows() async throws {
        let dir = try directory(["empty.jsonl": Data(), "header.csv": Data("a,b\n".utf8)])
        let empty = try await failure(["push", "--node", nowhere, "--model", "m", "--file", dir + "/empty.jsonl"])
        #expect(empty == "error: \(dir)/empty.jsonl: no rows: the file holds nothing")
        let header = try await failure(["push", "--node", nowhere, "--model", "m", "--file", dir + "/header.csv"])
        #expect(header == "error: \(dir)/header.csv: no rows: the file holds only a header")
        let drift = try await failure(["drift", "--reference", dir + "/header.csv", "--current", dir + "/header.csv"])
        #expect(drift.contains("no rows"), "\(drift)")
    }

    @Test("push of 8 MiB of NUL bytes fails at once on line 1; so does a line over --max-line-bytes")
    func binaryAndLongLines() async throws {
        let dir = try directory([
            "zeros.csv": Data(count: 8 << 20),
            "long.csv": Data(("a\n" + String(repeating: "x", count: 5000) + "\n").utf8),
        ])
        let zeros = try await failure(["push", "--node", nowhere, "--model", "m", "--file", dir + "/zeros.csv"])
        #expect(zeros == "error: cannot read \(dir)/zeros.csv:1: line holds a NUL byte; is this a text file?")
        let long = try await failure([
            "push", "--node", nowhere, "--model", "m", "--file", dir + "/long.csv", "--max-line-bytes", "1000",
        ])
        #expect(long == "error: \(dir)/long.csv:2: line longer than 1000 bytes (the line limit); is this a CSV file?")
    }

    @Test("drift of two files without a shared column fails and names both files' columns")
    func driftWithoutSharedColumns() async throws {
        let many = (0..<12).map { "r\($0)" }.joined(separator: ",")
        let dir = try directory([
            "ref.csv": Data((many + "\n" + Array(repeating: "1", count: 12).joined(separator: ",") + "\n").utf8),
            "cur.csv": Data("x,y\n1,2\n".utf8),
        ])
        let line = try await failure(["drift", "--reference", dir + "/ref.csv", "--current", dir + "/cur.csv"])
        #expect(line.contains("share no column"), "\(line)")
        #expect(line.contains("reference columns: r0, r1, r2, r3, r4, r5, r6, r7, … (4 more)"), "\(line)")
        #expect(line.contains("current columns: x, y"), "\(line)")
    }

    @Test("a refused port, port 99999 and an unresolvable host each fail quickly with their own message")
    func unreachableNodes() async throws {
        let dir = try directory(["a.csv": Data("a\n1\n".utf8)])
        func push(_ node: String) async throws -> (line: String, seconds: Double) {
            let started = Date()
            let line = try await failure(["push", "--node", node, "--model", "m", "--file", dir + "/a.csv"])
            return (line, Date().timeIntervalSince(started))
        }
        let port = try closedPort()
        let refused = try await push("tcp://127.0.0.1:\(port)")
        #expect(refused.line.contains("connection refused"), "\(refused.line)")
        // It took 21 s and more before; a generous bound for a busy machine.
        #expect(refused.seconds < 10, "took \(refused.seconds) s")

        let badPort = try await push("tcp://127.0.0.1:99999")
        #expect(badPort.line == "error: --node tcp://127.0.0.1:99999: port 99999 is out of range (1-65535)")

        let unresolvable = try await push("tcp://no-such-host.invalid:7400")
        #expect(unresolvable.line.contains("host \"no-such-host.invalid\" does not resolve"), "\(unresolvable.line)")
        #expect(unresolvable.line != refused.line)
        #expect(unresolvable.seconds < 10, "took \(unresolvable.seconds) s")

        let status = try await failure(["status", "--node", "tcp://127.0.0.1:\(port)", "--model", "m"])
        #expect(status.contains("connection refused"), "\(status)")
    }

    @Test("file and column errors name their cause: the system's reason, the row, the column")
    func causesAreNamed() async throws {
        let dir = try directory(["t.csv": Data("id,ts,x\na,1,2\nb,soon,3\n".utf8)])
        let generate = try await failure(["generate", "--rows", "5", "--out", dir + "/missing/g.csv"])
        #expect(generate == "error: cannot write \(dir)/missing/g.csv: No such file or directory")

        let badTime = try await failure([
            "push", "--node", nowhere, "--model", "m", "--file", dir + "/t.csv", "--time-column", "ts",
        ])
        #expect(
            badTime
                == "error: \(dir)/t.csv row 2: --time-column ts: \"soon\" is neither Unix milliseconds nor ISO 8601 time (0 rows before it were accepted)"
        )
        let noColumn = try await failure([
            "push", "--node", nowhere, "--model", "m", "--file", dir + "/t.csv", "--label-column", "truth",
        ])
        #expect(
            noColumn
                == "error: --label-column truth: no such column; the columns are id, ts, x (0 rows before it were accepted)"
        )

        let secret = try await failure([
            "start", "--data-dir", dir + "/data", "--cluster-secret-file", dir + "/no-secret",
        ])
        #expect(secret == "error: cannot read the cluster secret file \(dir)/no-secret: No such file or directory")
    }

    @Test("argument errors print one line with a hint and exit 64, not the usage screen")
    func usageErrors() async throws {
        let missing = try await failure(["push", "--model", "m"], status: 64)
        #expect(missing == "error: Missing expected argument '--file <file>' (see 'infranaut push --help')")
        let invalid = try await failure(["push", "--model", "m", "--file", "x.csv", "--batch-size", "0"], status: 64)
        #expect(invalid == "error: --batch-size must be between 1 and 1000000 (see 'infranaut push --help')")
        let unknown = try await failure(["frobnicate"], status: 64)
        #expect(unknown.hasSuffix("(see 'infranaut --help')"), "\(unknown)")
        let help = try await runCLI(["push", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("--max-line-bytes"))
    }
}
