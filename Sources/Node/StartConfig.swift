import Foundation
import Yams

/// The settings of `infranaut start` from three layers (docs/operations.md, "Configuration"): a
/// YAML file (`--config FILE`), `INFRANAUT_*` environment variables, and flags. Flags override the
/// environment, which overrides the file; a key none sets keeps its default. Every key is a flag's
/// long name (`data-dir`, `seed`, ...); its variable is the name in capitals with `_`
/// (`INFRANAUT_DATA_DIR`). An unknown key or a value of the wrong type in the file is an error
/// naming the file, line and key, and the node does not start.
///
/// apple/swift-configuration was the first choice. It reads keys a program asks for, so it cannot
/// refuse a key nobody asks for, and it reports no file lines. The file is small and Yams (already
/// used for specs) gives both, so this is a layer of its own, about 150 lines.
enum StartConfig {
    enum Kind { case text, integer, number, list, flag }

    /// Every key, its kind, and how to read its effective value from a parsed command.
    static let keys: [(name: String, kind: Kind, value: @Sendable (StartCommand) -> String)] = [
        ("data-dir", .text, { $0.dataDirectory }),
        ("client-listen", .text, { $0.clientListen }),
        ("node-id", .text, { $0.nodeID ?? "" }),
        ("cluster-listen", .text, { $0.clusterListen }),
        ("peer-listen", .text, { $0.peerListen }),
        ("cluster-secret-file", .text, { $0.clusterSecretFile ?? "" }),
        ("seed", .list, { $0.seeds.joined(separator: ",") }),
        ("roles", .text, { $0.roles }),
        ("shards", .integer, { "\($0.shards)" }),
        ("replication-factor", .integer, { "\($0.replicationFactor)" }),
        ("replica-load-factor", .number, { "\($0.replicaLoadFactor)" }),
        ("max-request-bytes", .integer, { "\($0.maxRequestBytes)" }),
        ("max-client-connections", .integer, { "\($0.maxClientConnections)" }),
        ("request-timeout-ms", .integer, { "\($0.requestTimeoutMs)" }),
        ("checkpoint-interval-ms", .integer, { "\($0.checkpointIntervalMs)" }),
        ("log-retained-entries", .integer, { "\($0.logRetainedEntries)" }),
        ("park-idle-models-after-s", .integer, { "\($0.parkIdleModelsAfterSeconds)" }),
        ("idempotency-window-s", .integer, { "\($0.idempotencyWindowSeconds)" }),
        ("max-features-per-model", .integer, { "\($0.maxFeaturesPerModel)" }),
        ("max-models", .integer, { "\($0.maxModels)" }),
        ("http-listen", .text, { $0.httpListen }),
        ("alert-defaults", .text, { $0.alertDefaults ?? "" }),
        ("compression", .text, { $0.compression }),
        ("log-level", .text, { $0.logLevel }),
        ("log-format", .text, { $0.logFormat }),
        ("json", .flag, { "\($0.json)" }),
    ]

    static func kind(of key: String) -> Kind? { keys.first { $0.name == key }?.kind }

    static func variable(_ key: String) -> String {
        "INFRANAUT_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// One key's values and where they came from ("file F:L", "env NAME", "flag").
    struct Setting {
        var values: [String]
        var source: String
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The settings of a YAML file: a mapping of keys to scalars (a list for `seed`).
    static func read(file path: String) throws(Problem) -> [String: Setting] {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20,
            let text = String(data: data, encoding: .utf8)
        else { throw Problem(description: "--config \(path): cannot read it (or it is over 1 MiB)") }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw Problem(description: "--config \(path): not valid YAML: \(error)")
        }
        guard let root else { return [:] }
        guard case .mapping(let mapping) = root else {
            throw Problem(description: "--config \(path): expected a mapping of keys to values")
        }
        var found: [String: Setting] = [:]
        for (keyNode, valueNode) in mapping {
            let line = (keyNode.mark?.line).map { ":\($0)" } ?? ""
            let key = keyNode.string ?? ""
            let place = "\(path)\(line): \(key)"
            guard let kind = kind(of: key) else {
                throw Problem(
                    description:
                        "--config \(place): unknown key; the keys are \(keys.map(\.name).joined(separator: ", "))")
            }
            var values: [String] = []
            switch (kind, valueNode) {
            case (.list, .sequence(let items)):
                for item in items {
                    guard case .scalar(let scalar) = item else {
                        throw Problem(description: "--config \(place): expected a list of addresses")
                    }
                    values.append(scalar.string)
                }
            case (_, .scalar(let scalar)):
                values = [scalar.string]
            default:
                throw Problem(description: "--config \(place): expected \(describe(kind)), found a \(shape(valueNode))")
            }
            for value in values where !fits(value, kind) {
                throw Problem(description: "--config \(place): \"\(value)\" is not \(describe(kind))")
            }
            found[key] = Setting(values: values, source: "file \(path)\(line)")
        }
        return found
    }

    /// The settings of `INFRANAUT_*` variables (a list as comma-separated addresses); variables of
    /// no key are left alone (INFRANAUT_CLUSTER_SECRET is read where the secret is resolved).
    static func read(environment: [String: String]) throws(Problem) -> [String: Setting] {
        var found: [String: Setting] = [:]
        for (key, kind, _) in keys {
            guard let value = environment[variable(key)] else { continue }
            let values = kind == .list ? value.split(separator: ",").map { String($0) } : [value]
            for one in values where !fits(one, kind) {
                throw Problem(description: "\(variable(key)): \"\(one)\" is not \(describe(kind))")
            }
            found[key] = Setting(values: values, source: "env \(variable(key))")
        }
        return found
    }

    /// The flags' settings, the `--config` file named among them, and the arguments that are no
    /// key (left for the parser to refuse or take).
    static func read(arguments: [String]) -> (settings: [String: Setting], config: String?, rest: [String]) {
        var settings: [String: Setting] = [:]
        var config: String?
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("--") else {
                rest.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var value: String?
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if name == "config" {
                config = value ?? (index < arguments.count ? arguments[index] : nil)
                if value == nil { index += 1 }
                continue
            }
            guard let kind = kind(of: name) else {
                rest.append(argument)
                continue
            }
            if kind == .flag {
                settings[name] = Setting(values: [value ?? "true"], source: "flag")
                continue
            }
            if value == nil, index < arguments.count {
                value = arguments[index]
                index += 1
            }
            guard let value else {
                rest.append(argument)
                continue
            }
            settings[name, default: Setting(values: [], source: "flag")].values.append(value)
        }
        return (settings, config, rest)
    }

    /// Every layer merged, highest first: flags, environment, file.
    static func layered(arguments: [String], environment: [String: String]) throws(Problem) -> (
        arguments: [String], sources: [String: String]
    ) {
        let flags = read(arguments: arguments)
        let file = try flags.config.map { (path) throws(Problem) in try read(file: path) } ?? [:]
        let env = try read(environment: environment)
        var merged: [String] = []
        var sources: [String: String] = [:]
        for (key, kind, _) in keys {
            guard let setting = flags.settings[key] ?? env[key] ?? file[key] else { continue }
            sources[key] = setting.source
            if kind == .flag {
                if setting.values.last == "true" { merged.append("--\(key)") }
                continue
            }
            for value in setting.values { merged += ["--\(key)", value] }
        }
        return (merged + flags.rest, sources)
    }

    static func fits(_ value: String, _ kind: Kind) -> Bool {
        switch kind {
        case .integer: Int(value) != nil
        case .number: Double(value) != nil
        case .flag: value == "true" || value == "false"
        case .text, .list: true
        }
    }

    static func describe(_ kind: Kind) -> String {
        switch kind {
        case .integer: "a whole number"
        case .number: "a number"
        case .flag: "true or false"
        case .text: "a text"
        case .list: "a list"
        }
    }

    static func shape(_ node: Node) -> String {
        switch node {
        case .mapping: "mapping"
        case .sequence: "list"
        default: "value"
        }
    }
}
