// swift-tools-version:6.1
import PackageDescription

let hotPathFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "swift-lvs",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LVSCore", targets: ["LVSCore"]),
        .executable(name: "lvsd", targets: ["lvsd"]),
        .executable(name: "lvsadm", targets: ["lvsadm"]),
        .executable(name: "lvs-bench", targets: ["lvs-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        // Linux headers and a few inline helpers the Swift overlay does not expose.
        .target(name: "CLVSShim"),
        // TLS for the SSL_GET checker, over the system's OpenSSL.
        .target(name: "CLVSTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // AF_XDP sockets, the XDP program and its VIP map (libxdp + libbpf, Debian: libxdp-dev libbpf-dev).
        .target(name: "CLVSXDP", linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]),
        // lvsd's BPF program (bpf/lvs_xdp.c), compiled by clang -target bpf during swift build and
        // carried in the binary: the plugin compiles it, lvs-embed-bpf writes it out as Swift.
        .executableTarget(name: "lvs-embed-bpf"),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool(), dependencies: ["lvs-embed-bpf"]),
        .target(name: "LVSBPFProgram", plugins: ["BPFObjectPlugin"]),
        // Allocation counter for the benchmark harness only.
        .target(name: "CAllocCounter"),
        // CPU hints (prefetch) for the packet path, header only.
        .target(name: "CLVSCPU"),
        // Pure decision logic: no I/O, injected clock, deterministic.
        .target(name: "LVSCore", dependencies: ["CLVSCPU"], swiftSettings: hotPathFlags),
        // Packet I/O backends and neighbour handling.
        .target(
            name: "LVSDataPlane",
            dependencies: ["LVSCore", "CLVSShim", "CLVSXDP", "LVSBPFProgram", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: hotPathFlags
        ),
        // Control protocol, ipvsadm grammar and output, config loaders.
        .target(name: "LVSControl", dependencies: ["LVSCore", "CLVSShim", "CLVSTLS"]),
        .executableTarget(
            name: "lvsd",
            dependencies: [
                "LVSCore", "LVSDataPlane", "LVSControl", "CLVSShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The control socket and metrics servers (lvsd only; lvsadm does not link NIO).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: hotPathFlags
        ),
        .executableTarget(name: "lvsadm", dependencies: ["LVSControl", "LVSCore"]),
        .executableTarget(name: "lvs-bench", dependencies: ["LVSCore", "CAllocCounter"], swiftSettings: hotPathFlags),
        .testTarget(name: "LVSCoreTests", dependencies: ["LVSCore"]),
        .testTarget(name: "LVSControlTests", dependencies: ["LVSControl", "LVSCore"]),
        .testTarget(name: "DataPlaneTests", dependencies: ["LVSDataPlane", "LVSCore", "CLVSShim", "CLVSXDP"]),
    ],
    swiftLanguageModes: [.v5]
)
