import ArgumentParser
import Cluster
import Drill
import Foundation
import Monitoring
import SwiftProtobuf
import Wire

/// A one-line error for the user; the CLI prints `error: <message>` and exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Talks to a node's client endpoint: encodes requests, decodes responses, retries what is retryable.
struct NodeClient {
    let client: RequestClient
    let address: String
    var timeout: Duration = .seconds(30)
    var retries = 5

    /// Checks the address at once (scheme, host, port range) without touching the network. The
    /// first request then makes one connection attempt and fails with its own message when nothing
    /// listens or the host does not resolve, instead of waiting out its deadline.
    init(address: String, timeout: Duration = .seconds(30)) throws {
        try Self.validate(address)
        self.address = address
        self.timeout = timeout
        var settings = RequestClientSettings()
        settings.maxMessageBytes = 256 << 20
        settings.dial = .reportFirstAttempt
        do {
            client = try RequestClient(dial: address, settings: settings)
        } catch {
            throw CLIError("--node \(address) is not a valid address: \(error.message)")
        }
    }

    /// `tcp://HOST:PORT` with a port in 1-65535 (an IPv6 host in brackets), or `ipc://PATH`.
    static func validate(_ address: String) throws {
        if address.hasPrefix("ipc://") {
            guard address.count > "ipc://".count else { throw CLIError("--node \(address) names no socket path") }
            return
        }
        guard address.hasPrefix("tcp://") else {
            throw CLIError("--node \(address) is not an nng address; expected tcp://HOST:PORT")
        }
        let rest = address.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":") else {
            throw CLIError("--node \(address) has no port; expected tcp://HOST:PORT")
        }
        let host = rest[..<colon]
        let port = rest[rest.index(after: colon)...]
        guard !host.isEmpty, host != "[]" else {
            throw CLIError("--node \(address) has no host; expected tcp://HOST:PORT")
        }
        guard !port.isEmpty, port.allSatisfy(\.isASCII), port.allSatisfy(\.isNumber) else {
            throw CLIError("--node \(address): port \"\(port)\" is not a number")
        }
        guard let number = Int(port.prefix(6)), (1...65_535).contains(number) else {
            throw CLIError("--node \(address): port \(port) is out of range (1-65535)")
        }
    }

    /// The host of a `tcp://HOST:PORT` address, for messages.
    private var host: String {
        let rest = address.dropFirst("tcp://".count)
        return String(rest[..<(rest.lastIndex(of: ":") ?? rest.endIndex)])
    }

    /// Sends `request`, retrying transport failures and retryable statuses (with the same bytes,
    /// so the same idempotency key) with backoff.
    func send(_ request: Infranaut_V1_Request) async throws -> Infranaut_V1_Response {
        let bytes: [UInt8] = try request.serializedBytes()
        var attempt = 0
        var delay: Duration = .milliseconds(100)
        while true {
            attempt += 1
            do {
                let reply = try await client.request(bytes, timeout: timeout)
                let response = try Infranaut_V1_Response(serializedBytes: reply)
                if response.outcome.retryable && attempt <= retries {
                    // A node at a limit says how long to wait (RESOURCE_EXHAUSTED's retry_after_ms).
                    try await Task.sleep(for: max(delay, .milliseconds(Int(response.outcome.retryAfterMs))))
                    delay = min(delay * 2, .seconds(2))
                    continue
                }
                return response
            } catch let error as TransportError where error.code == .refused {
                throw CLIError(
                    "cannot connect to \(address): connection refused; is the node running, and is this its client address?"
                )
            } catch let error as TransportError where error.code == .address {
                throw CLIError("cannot connect to \(address): host \"\(host)\" does not resolve (\(error.message))")
            } catch let error as TransportError {
                guard error.isRetryable && attempt <= retries else {
                    throw CLIError("no answer from \(address) after \(attempt) attempt(s): \(error.message)")
                }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            } catch let error as SwiftProtobuf.BinaryDecodingError {
                throw CLIError("\(address) answered with a malformed frame (\(error)); is it an Infranaut node?")
            }
        }
    }

    func close() { client.close() }
}

/// Writes `value` as pretty, key-sorted JSON on stdout. Non-finite numbers (undefined figures, or
/// figures beyond the `Double` range) are written as `null`, never as strings like "nan".
func printJSON<T: Encodable>(_ value: T) throws {
    print(try renderJSON(value))
}

/// `value` as pretty, key-sorted JSON, non-finite numbers as `null` (see ``printJSON(_:)``).
func renderJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try JSONNumbers.render { placeholder in
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: placeholder, negativeInfinity: placeholder, nan: placeholder)
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

func statusLine(_ status: Infranaut_V1_Status) -> String {
    "\(status.code.name): \(status.message)"
}

extension Double {
    /// A compact human rendering (up to 6 significant digits).
    var short: String {
        if isNaN { return "nan" }
        if self == rounded() && abs(self) < 1e15 { return String(Int64(self)) }
        return String(format: "%.6g", self)
    }
}

/// Sends a request that needs the cluster secret (`leave`, `publish_event`) to the node whose client
/// address is `node`: its peer address comes from the node's own `members` answer, and the request
/// is sealed with the secret from `secretFile` or `INFRANAUT_CLUSTER_SECRET`.
func askWithSecret(
    node: String, secretFile: String?, _ body: Infranaut_V1_Request.OneOf_Body, what: String, timeout: Duration
) async throws -> Infranaut_V1_Response {
    let secret: ClusterSecret
    do {
        guard let given = try ClusterSecret.given(file: secretFile) else {
            throw CLIError(
                "\(what) needs the cluster secret: pass --cluster-secret-file or set INFRANAUT_CLUSTER_SECRET")
        }
        secret = given
    } catch let error as SecretError {
        throw CLIError("\(error)")
    }
    let client = try NodeClient(address: node, timeout: .seconds(10))
    let view = try await client.send(
        .with {
            $0.version = 1
            $0.members = .init()
        })
    client.close()
    guard case .members(let members) = view.body, let me = members.members.first(where: { $0.id == members.selfID }),
        !me.peerAddress.isEmpty
    else {
        throw CLIError("\(node) did not say where its peer listener is: \(statusLine(view.outcome))")
    }
    do {
        return try await askPeer(me.peerAddress, body, secret: secret, timeout: timeout)
    } catch {
        throw CLIError("no answer from \(node)'s peer listener \(me.peerAddress): \(error)")
    }
}
