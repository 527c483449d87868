import Testing
import LVSModel
@testable import LVSVRRP

@Suite struct VRRPSettingsTests {
    @Test func anInstanceTakesItsFamilyFromItsFirstAddress() {
        var s = VRRPInstanceSettings(name: "VI_1", interface: "eth0", virtualRouterID: 51)
        #expect(!s.isIPv6)
        s.virtualAddresses = [VRRPAddress(address: IPAddress("2001:db8::10")!, prefixLength: 128)]
        #expect(s.isIPv6)
        #expect(s.priority == 100 && s.advertIntervalCentiseconds == 100 && s.downTimerAdverts == 3)
    }
}
