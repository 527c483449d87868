// swift-tools-version:6.1
import PackageDescription

let hotPathFlags: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "swift-lvs",
    products: [
        .library(name: "LVSCore", targets: ["LVSCore"]),
        .library(name: "LVSModel", targets: ["LVSModel"]),
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
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // C targets: one per set of libraries linked, so that nothing links what it does not use.
        // CLVSShim: the one shim for Linux headers (packet sockets, TPACKET), the helpers that need
        // _GNU_SOURCE, and header-only inline hints (prefetch, clvs_cpu.h). Links nothing but libc,
        // so every target (LVSCore, lvsadm's modules) may import it.
        .target(name: "CLVSShim"),
        // CLVSTLS: TLS for the SSL_GET checker; it alone links OpenSSL (lvsadm must not).
        .target(name: "CLVSTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // CLVSXDP: the BPF programs' loader, AF_XDP sockets and rings, the maps (layouts shared with
        // bpf/ in include/clvs_xdp_maps.h); it alone links libxdp + libbpf (Debian: libxdp-dev libbpf-dev).
        .target(name: "CLVSXDP", linkerSettings: [.linkedLibrary("xdp"), .linkedLibrary("bpf")]),
        // lvsd's BPF program (bpf/lvs_xdp.c), compiled by clang -target bpf during swift build and
        // carried in the binary: the plugin compiles it, lvs-embed-bpf writes it out as Swift.
        .executableTarget(name: "lvs-embed-bpf"),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool(), dependencies: ["lvs-embed-bpf"]),
        .target(name: "LVSBPFProgram", plugins: ["BPFObjectPlugin"]),
        // CAllocCounter: interposes malloc for lvs-bench's allocation count; linked into the
        // benchmark harness only (never into lvsd).
        .target(name: "CAllocCounter"),
        // The one syscall wrapper (EINTR retried, errno carried in SystemError); libc only, so
        // lvsadm's modules may link it too.
        .target(name: "LVSSystem"),
        // The shared model: addresses, service and destination keys, options, errors, the
        // snapshots lvsadm prints and the control messages. Pure, no Foundation.
        .target(name: "LVSModel", swiftSettings: hotPathFlags),
        // Pure decision logic: no I/O, injected clock, deterministic.
        .target(name: "LVSCore", dependencies: ["LVSModel", "CLVSShim"], swiftSettings: hotPathFlags),
        // Packet I/O backends and neighbour handling.
        .target(
            name: "LVSDataPlane",
            dependencies: ["LVSCore", "LVSModel", "LVSSystem", "CLVSShim", "CLVSXDP", "LVSBPFProgram", .product(name: "Logging", package: "swift-log"),
                           .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: hotPathFlags
        ),
        // The ipvsadm grammar, formats, help and lvsd's socket client (over LVSSystem): all lvsadm needs.
        .target(name: "IPVSAdm", dependencies: ["LVSModel", "LVSSystem"]),
        // keepalived.conf: lexer, parser, model, and the diff to the running table.
        // VRRP (RFC 3768/5798) as keepalived runs it: settings, adverts, the state machine. Pure.
        .target(name: "LVSVRRP", dependencies: ["LVSModel"]),
        .target(name: "KeepalivedConfig", dependencies: ["LVSModel", "LVSVRRP"]),
        // Health checks: the monitor, its state machine, one probe file per checker, script rules.
        .target(name: "LVSHealth", dependencies: ["KeepalivedConfig", "LVSModel", "LVSSystem", "CLVSTLS",
                                                  .product(name: "Subprocess", package: "swift-subprocess")]),
        // `lvsadm realserver`: a Direct-Routing real server's host setup (VIP on lo, ARP sysctls).
        .target(
            name: "LVSRealServer",
            dependencies: [
                "LVSModel",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The engine side of the control protocol: applies control requests to an Engine.
        .target(name: "LVSControl", dependencies: ["LVSCore", "LVSModel"]),
        // lvsd's runtime as a library (director, control server, sync daemon I/O, metrics), tested
        // by LVSDaemonTests; the lvsd executable only parses its arguments and runs it.
        .target(
            name: "LVSDaemon",
            dependencies: [
                "LVSCore", "LVSModel", "LVSDataPlane", "LVSControl", "IPVSAdm", "KeepalivedConfig", "LVSVRRP", "LVSHealth", "LVSSystem", "CLVSShim", "CLVSXDP",
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
        .executableTarget(
            name: "lvsd",
            dependencies: ["LVSDaemon", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: hotPathFlags
        ),
        .executableTarget(name: "lvsadm", dependencies: ["IPVSAdm", "LVSModel", "LVSRealServer"]),
        .executableTarget(name: "lvs-bench", dependencies: ["LVSCore", "LVSModel", "CAllocCounter"], swiftSettings: hotPathFlags),
        .testTarget(name: "LVSCoreTests", dependencies: ["LVSCore", "LVSModel"], exclude: ["Fixtures"]),
        // Fakes shared by the test targets (an in-memory IPVS table behind the control protocol).
        .target(name: "LVSTestSupport", dependencies: ["IPVSAdm", "LVSModel"], path: "Tests/LVSTestSupport"),
        // The seed lab's engine and client frames, shared by DataPlaneTests and LVSDaemonTests.
        .target(name: "LVSEngineTestSupport", dependencies: ["LVSCore", "LVSModel"], path: "Tests/LVSEngineTestSupport"),
        .testTarget(name: "LVSModelTests", dependencies: ["LVSModel"]),
        .testTarget(name: "IPVSAdmTests", dependencies: ["IPVSAdm", "LVSModel", "LVSTestSupport"]),
        .testTarget(name: "KeepalivedConfigTests", dependencies: ["KeepalivedConfig", "LVSModel", "LVSVRRP"]),
        .testTarget(name: "LVSHealthTests", dependencies: ["LVSHealth", "KeepalivedConfig", "LVSModel", "LVSTestSupport"]),
        .testTarget(name: "LVSRealServerTests", dependencies: ["LVSRealServer", "LVSModel"]),
        .testTarget(name: "LVSControlTests", dependencies: ["LVSControl", "LVSCore", "LVSModel", "IPVSAdm", "KeepalivedConfig", "LVSHealth", "LVSTestSupport"]),
        .testTarget(name: "LVSSystemTests", dependencies: ["LVSSystem"]),
        .testTarget(name: "LVSVRRPTests", dependencies: ["LVSVRRP", "LVSModel"]),
        .testTarget(name: "LVSDaemonTests", dependencies: ["LVSDaemon", "LVSDataPlane", "LVSControl", "IPVSAdm", "KeepalivedConfig", "LVSHealth", "LVSCore", "LVSModel", "LVSSystem", "LVSEngineTestSupport", "CLVSShim"]),
        .testTarget(name: "DataPlaneTests", dependencies: ["LVSDataPlane", "LVSCore", "LVSModel", "LVSEngineTestSupport", "CLVSShim", "CLVSXDP"]),
    ],
    // Swift 6 language mode (strict concurrency) for every target.
    swiftLanguageModes: [.v6]
)
