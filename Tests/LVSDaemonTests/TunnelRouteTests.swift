import Testing
@testable import LVSDaemon
import LVSCore
import LVSModel

/// `ip -j route get` answers decoded into the engine's tunnel routes.
@Suite struct TunnelRouteTests {
    let interfaces = [EngineInterface(index: 2, name: "eth0", mac: MACAddress("00:50:00:00:04:00")!,
                                      addresses: [(IPAddress("192.168.1.21")!, 24), (IPAddress("2001:db8:1::21")!, 64)])]

    @Test func viaAGatewayWithTheRouteSource() {
        let json = #"[{"dst":"10.9.0.31","gateway":"192.168.1.254","dev":"eth0","prefsrc":"192.168.1.21","flags":[],"uid":0,"cache":[]}]"#
        let r = RouteLookup.parse(json, interfaces: interfaces, address: IPAddress("10.9.0.31")!, interfaceMTU: { _ in 9000 })
        #expect(r == TunnelRoute(interface: 2, gateway: IPAddress("192.168.1.254")!, source: IPAddress("192.168.1.21")!, mtu: 9000))
    }

    @Test func onLinkWithARouteMTU() {
        let json = #"[{"dst":"192.168.1.31","dev":"eth0","prefsrc":"192.168.1.21","metrics":[{"mtu":1400}],"flags":[],"uid":0,"cache":[]}]"#
        let r = RouteLookup.parse(json, interfaces: interfaces, address: IPAddress("192.168.1.31")!, interfaceMTU: { _ in 1500 })
        #expect(r == TunnelRoute(interface: 2, gateway: nil, source: IPAddress("192.168.1.21")!, mtu: 1400))
    }

    @Test func ipv6WithoutPreferredSourceTakesTheInterfaceAddress() {
        let json = #"[{"dst":"2001:db8:2::5","gateway":"2001:db8:1::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]"#
        let r = RouteLookup.parse(json, interfaces: interfaces, address: IPAddress("2001:db8:2::5")!, interfaceMTU: { _ in nil })
        #expect(r == TunnelRoute(interface: 2, gateway: IPAddress("2001:db8:1::1")!, source: IPAddress("2001:db8:1::21")!, mtu: 1500))
    }

    @Test func notThroughLvsdsInterfacesOrGarbage() {
        let other = #"[{"dst":"10.9.0.31","gateway":"10.0.0.1","dev":"eth1","prefsrc":"10.0.0.2","flags":[],"uid":0,"cache":[]}]"#
        #expect(RouteLookup.parse(other, interfaces: interfaces, address: IPAddress("10.9.0.31")!, interfaceMTU: { _ in 1500 }) == nil)
        #expect(RouteLookup.parse("RTNETLINK answers: Network is unreachable", interfaces: interfaces,
                                  address: IPAddress("10.9.0.31")!, interfaceMTU: { _ in 1500 }) == nil)
    }
}
