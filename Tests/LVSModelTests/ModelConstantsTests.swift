import LVSModel
import Testing

/// The model's constants, now computed (inlinable) rather than stored: the same values as before.
@Suite struct ModelConstantsTests {
    @Test func addressConstants() {
        #expect(IPAddress.zero == IPAddress("::")!)
        #expect(IPAddress.ipv4Zero.isIPv4 && IPAddress.ipv4Zero.ipv4Value == 0 && IPAddress.ipv4Zero.description == "0.0.0.0")
        #expect(MACAddress.zero.value == 0 && MACAddress.broadcast == MACAddress("ff:ff:ff:ff:ff:ff")!)
        #expect(IPAddress("10.1.2.3")!.masked(prefix: 8) == IPAddress("10.0.0.0")!)
        #expect(IPAddress("2001:db8::1")!.masked(prefix: 64) == IPAddress("2001:db8::")!)
        #expect(IPAddress("10.0.0.1")! < IPAddress("10.0.0.2")!)
    }

    @Test func serviceFlagConstants() {
        #expect(ServiceFlags.schedMask == [.sched1, .sched2, .sched3])
        #expect(ServiceFlags.fallback == .sched1 && ServiceFlags.hashPort == .sched2)
        #expect([ServiceFlags.persistent, .hashed, .onePacket].map(\.rawValue) == [1, 2, 4])
        #expect(ServiceKey(fwmark: 3, ipv6: false).isFwmark && !ServiceKey(proto: .tcp, address: .ipv4Zero, port: 80).isFwmark)
    }
}
