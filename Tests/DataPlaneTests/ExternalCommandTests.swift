import Foundation
import XCTest
@testable import LVSDataPlane

/// `ExternalCommand` (swift-subprocess): stdin, exit status, combined output, and the calling
/// thread's network namespace (what `nft` needs when lvsd or a test has entered one).
final class ExternalCommandTests: XCTestCase {
    func testInputStatusAndCombinedOutput() throws {
        let cat = try ExternalCommand.run(["sh", "-c", "cat; echo err >&2; exit 3"], input: "in\n")
        XCTAssertEqual(cat.status, 3)
        XCTAssertEqual(cat.output, "in\nerr\n")
        XCTAssertThrowsError(try ExternalCommand.check(["sh", "-c", "exit 1"]))
        XCTAssertEqual(try ExternalCommand.check(["echo", "ok"]), "ok\n")
    }

    func testRunsInTheCallingThreadsNetworkNamespace() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root (network namespaces)") }
        let ns = "lvsdp-\(getpid())-cmd"
        try shell("ip netns add \(ns)")
        defer { _ = try? ExternalCommand.run(["ip", "netns", "del", ns]) }
        try shell("ip -n \(ns) link add lvsdp-cmd0 type veth peer name lvsdp-cmd1")
        let inside: String = try inNamespace(ns) { try ExternalCommand.check(["ip", "-o", "link", "show"]) }
        XCTAssertTrue(inside.contains("lvsdp-cmd0"), inside)
        let outside = try ExternalCommand.check(["ip", "-o", "link", "show"])
        XCTAssertFalse(outside.contains("lvsdp-cmd0"), outside)
    }
}
