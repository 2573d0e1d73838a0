// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Infranaut",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "infranaut", targets: ["Node"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        // Notifications (docs/alerting.md): HTTP(S) to webhooks, Slack and PagerDuty; swift-nio also
        // serves the test receivers.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        // Operations (docs/operations.md): health, readiness and Prometheus metrics over HTTP.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // C libraries: nng 1.11 built statically by scripts/install-nng.sh (Debian's 1.5.2 hangs in
        // nng_close; docs/transport.md) and librocksdb-dev from Debian.
        .systemLibrary(name: "CNNG", pkgConfig: "infranaut-nng"),
        .systemLibrary(name: "CRocksDB", pkgConfig: "rocksdb", providers: [.apt(["librocksdb-dev"])]),

        .target(
            name: "Wire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict
        ),
        .target(name: "Monitoring", swiftSettings: strict),
        .target(name: "Tabular", swiftSettings: strict),
        // Model specs: the YAML form, its rules, and rendering (docs/models.md).
        .target(
            name: "Specs", dependencies: ["Wire", "Monitoring", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict),
        .target(name: "Storage", dependencies: ["CRocksDB"], swiftSettings: strict),
        .target(name: "Telemetry", dependencies: ["Wire", "Tabular"], swiftSettings: strict),
        .target(
            name: "Cluster",
            // Monitoring: SplitMix64 and FNV-1a, one copy of each (Monitoring itself depends on nothing).
            // ServiceLifecycle: the request servers are services of the node's group.
            dependencies: [
                "Monitoring", "CNNG", .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Actors",
            dependencies: [
                "Wire", "Monitoring", "Storage", "Cluster", "Specs",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Drill", dependencies: ["Wire", "Cluster", "Monitoring", "Tabular", "Telemetry"], swiftSettings: strict),
        .executableTarget(
            name: "Node",
            dependencies: [
                "Actors", "Drill", "Wire", "Monitoring", "Cluster", "Tabular", "Storage", "Telemetry", "Specs",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // A real HTTP listener that records what it receives: the notification receiver of the tests
        // and of the alert benchmark.
        .target(
            name: "Receiver",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "InfranautBench",
            dependencies: [
                "Actors", "Drill", "Wire", "Monitoring", "Cluster", "Storage", "Tabular", "Telemetry", "Receiver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "MonitoringTests", dependencies: ["Monitoring"], resources: [.copy("Fixtures")]),
        .testTarget(name: "StorageTests", dependencies: ["Storage"]),
        .testTarget(name: "TabularTests", dependencies: ["Tabular"]),
        .testTarget(name: "SpecsTests", dependencies: ["Specs", "Wire"]),
        .testTarget(name: "TelemetryTests", dependencies: ["Telemetry", "Tabular", "Wire"]),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster"]),
        .testTarget(
            name: "ActorsTests",
            dependencies: ["Actors", "Wire", "Storage", "Cluster", "Monitoring", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Wire", "Cluster", "Drill", "Monitoring", "Receiver",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]),
    ]
)
