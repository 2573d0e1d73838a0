import ArgumentParser
import Drill
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The partial-frame attack: raw TCP connections to a node's client port that each declare a large
/// message and send all of it but the last byte, then hold the connection open. Reports the node's
/// resident memory while they are held.
struct PinBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pin", abstract: "Node memory under connections that hold partial frames open.")

    @Option(help: "Path of the infranaut binary (default: next to this one).")
    var binary: String?

    @Option(help: "Connections that each hold one partial frame.")
    var connections = 16

    @Option(help: "Which listener to attack: client or peer (connections there have no secret).")
    var listener = "client"

    @Option(name: .customLong("declared-mib"), help: "Declared frame size in MiB (the attack of the issue: 120).")
    var declaredMiB = 120

    @Option(
        name: .customLong("sent-mib"),
        help: "Bytes actually sent per connection, in MiB (default: the declared size minus one byte).")
    var sentMiB: Int?

    func run() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("infranaut-pin-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let node = try await launchLocalCluster(
            binary: infranautBinary(binary), nodes: 1, base: base, idPrefix: "pin", extra: ["--log-level", "warning"])[
                0]
        defer {
            node.process.terminate()
            node.process.waitUntilExit()
        }
        let pid = node.process.processIdentifier
        let idle = residentMegabytes(pid: pid)
        let target = listener == "peer" ? node.peer : node.client
        let port = UInt16(target.split(separator: ":").last.flatMap { Int($0) } ?? 0)
        let declared = UInt64(declaredMiB) << 20
        let toSend = sentMiB.map { UInt64($0) << 20 } ?? (declared - 1)
        var sockets: [Int32] = []
        defer { for fd in sockets { close(fd) } }
        var accepted = 0
        var peakDuring = idle
        for _ in 0..<connections {
            let fd = try connectLoopback(port: port)
            sockets.append(fd)
            // SP handshake as a REQ peer (protocol 0x30), then one frame header.
            var header: [UInt8] = [0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00]
            withUnsafeBytes(of: declared.bigEndian) { header.append(contentsOf: $0) }
            guard sendAll(fd, header) else { continue }
            let chunk = [UInt8](repeating: 0x41, count: 1 << 20)
            var sent: UInt64 = 0
            var open = true
            while sent < toSend && open {
                let n = Int(min(UInt64(chunk.count), toSend - sent))
                open = sendAll(fd, Array(chunk[0..<n]))
                if open { sent += UInt64(n) }
            }
            if open && sent == toSend { accepted += 1 }
            peakDuring = max(peakDuring, residentMegabytes(pid: pid))
        }
        try await Task.sleep(for: .seconds(2))
        let held = residentMegabytes(pid: pid)
        print(
            String(
                format:
                    "%@ listener, %d connections declaring %d MiB, sending %.1f MiB each: %d kept every byte; node RSS %.0f MB idle, peak %.0f MB while sending, %.0f MB while held",
                listener, connections, declaredMiB, Double(toSend) / 1_048_576, accepted, idle, max(peakDuring, held),
                held))
    }
}

private func connectLoopback(port: UInt16) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw DrillError("socket() failed") }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        close(fd)
        throw DrillError("connect to 127.0.0.1:\(port) failed")
    }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

/// False once the peer closed the connection (or a send timed out).
private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard n > 0 else { return false }
        offset += n
    }
    return true
}
