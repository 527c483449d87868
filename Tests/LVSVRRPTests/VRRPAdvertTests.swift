import Testing
import LVSModel
@testable import LVSVRRP

/// Adverts captured from keepalived 2.2.7 itself (checks/vrrp/keepalived-golden.sh: keepalived
/// --vrrp in one namespace, tcpdump in the other): the VRRP message after the IP header.
enum KeepalivedCapture {
    /// vrrp_instance V2PASS: vrid 51, priority 150, advert_int 1, auth_type PASS, auth_pass
    /// vrcore1, VIPs 10.99.0.100 and 10.99.0.101; sent by 10.99.0.1 to 224.0.0.18.
    static let v2Pass = hex("2133 9602 0101 b4f2 0a63 0064 0a63 0065 7672 636f 7265 3100")
    /// The same instance's priority-0 advert when keepalived was stopped.
    static let v2PassStop = hex("2133 0002 0101 4af3 0a63 0064 0a63 0065 7672 636f 7265 3100")
    static let v2Source = ip("10.99.0.1")
    /// vrrp_instance V3IPV6: version 3, vrid 52, priority 200, advert_int 0.5, VIPs
    /// fd00:99::100 and fd00:99::101; sent by fe80::ff:fe00:a to ff02::12.
    static let v3IPv6 = hex("3134 c802 0032 0c2a fd00 0099 0000 0000 0000 0000 0000 0100 fd00 0099 0000 0000 0000 0000 0000 0101")
    static let v3IPv6Stop = hex("3134 0002 0032 d42a fd00 0099 0000 0000 0000 0000 0000 0100 fd00 0099 0000 0000 0000 0000 0000 0101")
    static let v3Source = ip("fe80::ff:fe00:a")
}

@Suite struct VRRPAdvertTests {
    @Test func keepalivedsV2PasswordAdvertDecodesAndReencodesByteForByte() throws {
        for bytes in [KeepalivedCapture.v2Pass, KeepalivedCapture.v2PassStop] {
            let message = try VRRPAdvert.decode(bytes, ipv6: false).get()
            #expect(message.version == 2 && message.virtualRouterID == 51)
            #expect(message.intervalCentiseconds == 100 && message.authType == VRRPAdvert.authPassword)
            #expect(message.authData == VRRPAdvert.authData(password: Array("vrcore1".utf8)))
            #expect(message.addresses == [ip("10.99.0.100"), ip("10.99.0.101")])
            #expect(VRRPAdvert.checksumIsValid(bytes, version: 2, source: KeepalivedCapture.v2Source, destination: VRRPAdvert.ipv4Group))
            #expect(VRRPAdvert.encode(message, source: KeepalivedCapture.v2Source, destination: VRRPAdvert.ipv4Group) == bytes)
        }
        #expect(try VRRPAdvert.decode(KeepalivedCapture.v2Pass, ipv6: false).get().priority == 150)
        #expect(try VRRPAdvert.decode(KeepalivedCapture.v2PassStop, ipv6: false).get().priority == 0)
    }

    @Test func keepalivedsV3IPv6AdvertDecodesAndReencodesWithThePseudoHeaderChecksum() throws {
        for bytes in [KeepalivedCapture.v3IPv6, KeepalivedCapture.v3IPv6Stop] {
            let message = try VRRPAdvert.decode(bytes, ipv6: true).get()
            #expect(message.version == 3 && message.virtualRouterID == 52 && message.intervalCentiseconds == 50)
            #expect(message.addresses == [ip("fd00:99::100"), ip("fd00:99::101")])
            #expect(VRRPAdvert.checksumIsValid(bytes, version: 3, source: KeepalivedCapture.v3Source, destination: VRRPAdvert.ipv6Group))
            #expect(VRRPAdvert.encode(message, source: KeepalivedCapture.v3Source, destination: VRRPAdvert.ipv6Group) == bytes)
            // The pseudo-header counts: another source gives another checksum.
            #expect(!VRRPAdvert.checksumIsValid(bytes, version: 3, source: ip("fe80::2"), destination: VRRPAdvert.ipv6Group))
        }
    }

    /// The router, configured as keepalived.conf said, sends exactly keepalived's bytes.
    @Test func theRouterSendsKeepalivedsBytesForTheSameSettings() throws {
        var v2 = instance("V2PASS", vrid: 51, priority: 150, vips: ["10.99.0.100", "10.99.0.101"])
        v2.authPassword = Array("vrcore1".utf8)
        var v3 = instance("V3IPV6", vrid: 52, priority: 200, version: 3, interval: 50, vips: ["fd00:99::100", "fd00:99::101"])
        v3.interface = "veth-a"
        v2.interface = "veth-a"
        let router = makeRouter([v2, v3], interfaces: [])
        _ = router.setInterface("veth-a", up: true, primaryIPv4: KeepalivedCapture.v2Source,
                                primaryIPv6LinkLocal: KeepalivedCapture.v3Source, now: 0)
        _ = router.start(now: 0)
        var sent: [[UInt8]] = []
        var now: VRRPNanoseconds = 0
        while sent.count < 2, let next = router.nextDeadline, next < 10 * second {
            now = next
            for case .send(_, _, _, _, let bytes) in router.advance(now: now) where !sent.contains(bytes) { sent.append(bytes) }
        }
        #expect(sent.contains(KeepalivedCapture.v2Pass))
        #expect(sent.contains(KeepalivedCapture.v3IPv6))
        var stops: [[UInt8]] = []
        for case .send(_, _, _, _, let bytes) in router.shutdown(now: now + 1) { stops.append(bytes) }
        #expect(Set(stops) == [KeepalivedCapture.v2PassStop, KeepalivedCapture.v3IPv6Stop])
    }

    @Test func encodeDecodeRoundTripsEveryVersionAndFamily() throws {
        let cases: [(UInt8, [String], String, String)] = [
            (2, ["192.0.2.1"], "10.0.0.1", "224.0.0.18"),
            (2, [], "10.0.0.1", "10.0.0.2"),
            (3, ["192.0.2.1", "192.0.2.2", "192.0.2.3"], "10.0.0.1", "224.0.0.18"),
            (3, ["2001:db8::1"], "fe80::1", "ff02::12"),
            (3, ["2001:db8::1", "2001:db8::2"], "fe80::1", "fe80::2"),
        ]
        for (version, vips, source, destination) in cases {
            var message = VRRPAdvert.Message(version: version, virtualRouterID: 7, priority: 254,
                                             intervalCentiseconds: version == 2 ? 300 : 4095, addresses: vips.map(ip))
            if version == 2 { message.authType = VRRPAdvert.authPassword; message.authData = VRRPAdvert.authData(password: Array("pw".utf8)) }
            let bytes = VRRPAdvert.encode(message, source: ip(source), destination: ip(destination))
            let ipv6 = !ip(source).isIPv4
            #expect(bytes.count == VRRPAdvert.expectedLength(version: version, ipv6: ipv6, addressCount: vips.count))
            var decoded = try VRRPAdvert.decode(bytes, ipv6: ipv6).get()
            #expect(VRRPAdvert.checksumIsValid(bytes, version: version, source: ip(source), destination: ip(destination)))
            decoded.checksum = 0
            #expect(decoded == message)
        }
    }

    @Test func decodeNamesWhatIsWrong() {
        let good = KeepalivedCapture.v2Pass
        #expect(VRRPAdvert.decode(Array(good.prefix(7)), ipv6: false) == .failure(.truncated))
        #expect(VRRPAdvert.decode(Array(good.prefix(12)), ipv6: false) == .failure(.truncated))
        #expect(VRRPAdvert.decode(Array(good.dropLast()), ipv6: false) == .failure(.addressCount))
        var lying = good
        lying[VRRPAdvert.Offset.addressCount] = 3
        #expect(VRRPAdvert.decode(lying, ipv6: false) == .failure(.addressCount))
        var version = good
        version[0] = 0x41
        #expect(VRRPAdvert.decode(version, ipv6: false) == .failure(.version))
        var type = good
        type[0] = 0x22
        #expect(VRRPAdvert.decode(type, ipv6: false) == .failure(.type))
        var corrupt = good
        corrupt[VRRPAdvert.Offset.priority] = 151
        #expect(!VRRPAdvert.checksumIsValid(corrupt, version: 2, source: KeepalivedCapture.v2Source, destination: VRRPAdvert.ipv4Group))
        // v2 has no pseudo-header: the addresses do not matter.
        #expect(VRRPAdvert.checksumIsValid(good, version: 2, source: ip("10.1.1.1"), destination: ip("10.2.2.2")))
    }
}

/// Our adverts that checks/vrrp/keepalived-golden.sh sends to keepalived 2.2.7 (which must accept
/// them and step down to BACKUP): the router's own output for these settings.
enum OurAdverts {
    /// V2PASS at priority 200 from 10.99.0.2.
    static let v2Pass = hex("2133 c802 0101 82f2 0a63 0064 0a63 0065 7672 636f 7265 3100")
    /// V3IPV6 at priority 250 from fe80::ff:fe00:b.
    static let v3IPv6 = hex("3134 fa02 0032 da28 fd00 0099 0000 0000 0000 0000 0000 0100 fd00 0099 0000 0000 0000 0000 0000 0101")
}

@Suite struct VRRPOurAdvertTests {
    @Test func theAdvertsSentToKeepalivedAreTheRoutersOwn() {
        var v2 = instance("V2PASS", vrid: 51, priority: 200, vips: ["10.99.0.100", "10.99.0.101"], interface: "veth-b")
        v2.authPassword = Array("vrcore1".utf8)
        let v3 = instance("V3IPV6", vrid: 52, priority: 250, version: 3, interval: 50,
                          vips: ["fd00:99::100", "fd00:99::101"], interface: "veth-b")
        let router = makeRouter([v2, v3], interfaces: [])
        _ = router.setInterface("veth-b", up: true, primaryIPv4: ip("10.99.0.2"), primaryIPv6LinkLocal: ip("fe80::ff:fe00:b"), now: 0)
        _ = router.start(now: 0)
        var sent: [String: [UInt8]] = [:]
        while sent.count < 2, let next = router.nextDeadline, next < 10 * second {
            for case .send(let name, _, _, _, let bytes) in router.advance(now: next) { sent[name] = bytes }
        }
        #expect(sent["V2PASS"] == OurAdverts.v2Pass)
        #expect(sent["V3IPV6"] == OurAdverts.v3IPv6)
    }
}
