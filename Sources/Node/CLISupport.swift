import ArgumentParser
import Cluster
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

    init(address: String, timeout: Duration = .seconds(30)) throws {
        guard address.hasPrefix("tcp://") || address.hasPrefix("ipc://") else {
            throw CLIError("--node \(address) is not an nng address; expected tcp://HOST:PORT")
        }
        self.address = address
        self.timeout = timeout
        var settings = RequestClientSettings()
        settings.maxMessageBytes = 256 << 20
        do {
            client = try RequestClient(dial: address, settings: settings)
        } catch {
            throw CLIError("cannot dial \(address): \(error.message)")
        }
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
                    try await Task.sleep(for: delay)
                    delay = min(delay * 2, .seconds(2))
                    continue
                }
                return response
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
