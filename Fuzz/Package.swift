// swift-tools-version:6.1
// libFuzzer target for the frame parser and Engine.process. Built only by scripts/fuzz.sh:
//   swift build -c release -Xswiftc -sanitize=fuzzer,address
import PackageDescription

let package = Package(
    name: "lvs-fuzz",
    dependencies: [.package(name: "swift-lvs", path: "..")],
    targets: [
        .executableTarget(name: "FrameFuzz", dependencies: [.product(name: "LVSCore", package: "swift-lvs"), .product(name: "LVSModel", package: "swift-lvs")]),
    ],
    swiftLanguageModes: [.v6]
)
