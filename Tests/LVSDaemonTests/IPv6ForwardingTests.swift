import Foundation
@testable import LVSDaemon
import Testing

/// `Director.forwardsIPv6` reads `net.ipv6.conf.NAME.forwarding`, which decides the router flag of
/// the unsolicited NAs (keepalived's `set_ipv6_forwarding`).
@Suite struct IPv6ForwardingTests {
    @Test func readsTheInterfacesForwardingSetting() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lvs-fwd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        for (name, value) in [("eth0", "1\n"), ("eth1", "0\n"), ("eth2", "junk\n")] {
            let dir = root.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try value.write(to: dir.appendingPathComponent("forwarding"), atomically: true, encoding: .utf8)
        }
        #expect(Director.forwardsIPv6("eth0", procRoot: root.path))
        #expect(!Director.forwardsIPv6("eth1", procRoot: root.path))
        #expect(!Director.forwardsIPv6("eth2", procRoot: root.path))
        #expect(!Director.forwardsIPv6("eth9", procRoot: root.path))
        #expect(!Director.forwardsIPv6("../eth0", procRoot: root.path))
    }
}
