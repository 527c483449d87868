import Testing
@testable import LVSDaemon
import LVSModel

/// NAT needs the real servers' replies in lvsd: the planes whose XDP program passes them to the
/// kernel refuse `-m` at `-a`/`-e` with a message naming the method and the plane.
@Suite struct ForwardingSupportTests {
    @Test func natIsRefusedOnlyWhereRepliesNeverReachLVSD() {
        for plane in ["afxdp", "xdp"] {
            let text = ForwardingSupport.refusal(method: .masquerade, plane: plane)
            #expect(text?.contains("masquerading (-m, NAT)") == true && text?.contains("the \(plane) data plane") == true)
        }
        for plane in ["afpacket", "tc", "in-memory"] { #expect(ForwardingSupport.refusal(method: .masquerade, plane: plane) == nil) }
        for plane in ["afpacket", "afxdp", "xdp", "tc"] { #expect(ForwardingSupport.refusal(method: .directRoute, plane: plane) == nil) }
    }
}
