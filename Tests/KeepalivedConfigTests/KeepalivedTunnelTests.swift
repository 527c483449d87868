import Testing
@testable import KeepalivedConfig
import LVSModel

/// `lvs_method TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` (keepalived 2.x), on the
/// virtual server (inherited) and on a real server; no "DR only" warning any more.
@Suite struct KeepalivedTunnelTests {
    @Test func tunnelTypesPortsAndFlags() throws {
        let (c, d) = try KeepalivedLoader.parse(text: """
        virtual_server 192.168.1.100 80 {
            protocol TCP
            lb_algo rr
            lb_kind TUN type gue port 6080 csum
            real_server 10.9.0.31 80 { }
            real_server 10.9.0.32 80 { lvs_method TUN type gre nocsum }
            real_server 10.9.0.33 80 { lvs_method TUN }
        }
        """, file: "keepalived.conf")
        let rs = c.virtualServers[0].realServers
        #expect(rs.map(\.method.method) == [.tunnel, .tunnel, .tunnel])
        #expect(rs[0].method.tunnelType == .gue && rs[0].method.tunnelPort == 6080 && rs[0].method.tunnelFlags == 1)
        #expect(rs[1].method.tunnelType == .gre && rs[1].method.tunnelFlags == 0)
        #expect(rs[2].method.tunnelType == .ipip)
        #expect(!d.contains { $0.description.contains("forwards with DR") })
    }

    @Test func gueWithoutAPortIsAnError() throws {
        let (_, d) = try KeepalivedLoader.parse(text: """
        virtual_server 192.168.1.100 80 {
            protocol TCP
            lb_kind TUN type gue
            real_server 10.9.0.31 80 { }
        }
        """, file: "keepalived.conf")
        #expect(d.contains { $0.description.contains("gue tunnel needs a port") })
    }
}
