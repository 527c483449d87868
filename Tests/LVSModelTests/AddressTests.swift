import Testing
@testable import LVSModel

@Suite struct AddressTests {
    @Test func ipv4RoundTrip() {
        let a = IPAddress("192.168.1.100")!
        #expect(a.isIPv4)
        #expect(a.ipv4Value == 0xC0A8_0164)
        #expect(a.description == "192.168.1.100")
    }
    @Test func ipv6RoundTrip() {
        let a = IPAddress("2001:db8::100")!
        #expect(!a.isIPv4)
        #expect(a.description == "2001:db8::100")
        #expect(a.masked(prefix: 32).description == "2001:db8::")
    }
    @Test func macRoundTrip() {
        let m = MACAddress("00:50:00:00:04:00")!
        #expect(m.description == "00:50:00:00:04:00")
        #expect(MACAddress("zz:50:00:00:04:00") == nil)
    }
}
