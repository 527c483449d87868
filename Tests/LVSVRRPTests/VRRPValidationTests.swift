import Testing
import LVSModel
@testable import LVSVRRP

/// Recomputes the checksum of a hand-edited message, so that only the edited field is wrong.
func resealed(_ packet: VRRPReceived, version: UInt8) -> VRRPReceived {
    var bytes = packet.payload
    bytes[VRRPAdvert.Offset.checksum] = 0
    bytes[VRRPAdvert.Offset.checksum + 1] = 0
    let sum = VRRPAdvert.checksum(bytes, version: version, source: packet.source, destination: packet.destination)
    bytes[VRRPAdvert.Offset.checksum] = UInt8(sum >> 8)
    bytes[VRRPAdvert.Offset.checksum + 1] = UInt8(truncatingIfNeeded: sum)
    return VRRPReceived(interface: packet.interface, source: packet.source, destination: packet.destination,
                        hopLimit: packet.hopLimit, payload: bytes)
}

/// A small deterministic generator (SplitMix64) for the fuzz test.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct VRRPValidationTests {
    func passwordBackup() -> VRRPRouter {
        var settings = instance(priority: 100)
        settings.authPassword = Array("secret".utf8)
        let router = makeRouter([settings, instance("V6", vrid: 52, version: 3, vips: ["2001:db8::1"])])
        _ = router.start(now: 0)
        return router
    }

    @Test func everyRejectionIsCountedAndChangesNothing() {
        let router = passwordBackup()
        let deadline = router.nextDeadline
        let good = advert(priority: 200, password: "secret")
        var cases: [(VRRPRejection, VRRPReceived)] = []
        var short = good
        short.payload = Array(good.payload.prefix(5))
        cases.append((.truncated, short))
        cases.append((.hopLimit, advert(priority: 200, password: "secret", hopLimit: 64)))
        cases.append((.version, advert(priority: 200, version: 3)))
        var type = good
        type.payload[VRRPAdvert.Offset.versionType] = 0x22
        cases.append((.type, resealed(type, version: 2)))
        var corrupt = good
        corrupt.payload[VRRPAdvert.Offset.priority] = 201
        cases.append((.checksum, corrupt))
        cases.append((.unknownVRID, advert(vrid: 99, priority: 200, password: "secret")))
        cases.append((.unknownVRID, advert(priority: 200, password: "secret", interface: "eth9")))
        cases.append((.authType, advert(priority: 200)))
        cases.append((.authPassword, advert(priority: 200, password: "Secret")))
        var lying = good
        lying.payload[VRRPAdvert.Offset.addressCount] = 2
        cases.append((.addressCount, resealed(lying, version: 2)))
        cases.append((.addressCount, advert(priority: 200, vips: ["10.0.0.100", "10.0.0.101"], password: "secret")))
        cases.append((.addressList, advert(priority: 200, vips: ["10.0.0.200"], password: "secret")))
        cases.append((.interval, advert(priority: 200, interval: 200, password: "secret")))
        cases.append((.ownAddress, advert(from: "10.0.0.1", priority: 200, password: "secret")))
        cases.append((.family, VRRPReceived(interface: "eth0", source: ip("10.0.0.2"), destination: VRRPAdvert.ipv6Group,
                                            hopLimit: 255, payload: good.payload)))
        // IPv6: the VRID of the IPv4 instance is unknown there; a v3 checksum with the wrong source fails.
        cases.append((.unknownVRID, advert(from: "fe80::2", vrid: 51, priority: 200, version: 3, vips: ["2001:db8::1"])))
        var v6 = advert(from: "fe80::2", vrid: 52, priority: 200, version: 3, vips: ["2001:db8::1"])
        v6.source = ip("fe80::3")
        cases.append((.checksum, v6))
        var expected: [VRRPRejection: Int] = [:]
        for (reason, packet) in cases {
            #expect(router.receive(packet, now: second).isEmpty, "\(reason)")
            expected[reason, default: 0] += 1
            #expect(router.rejections == expected, "\(reason)")
        }
        #expect(router.nextDeadline == deadline)
        #expect(router.status.allSatisfy { $0.state == .backup && $0.advertsReceived == 0 })
        // And the good one is accepted.
        _ = router.receive(good, now: second)
        #expect(router.status[0].advertsReceived == 1)
    }

    /// Thousands of random, truncated and mutated packets: no crash, every one either counted as a
    /// rejection or accepted as a valid advert, and only an accepted advert changes anything.
    @Test func fuzzedPacketsNeverCrashAndOnlyValidAdvertsCount() {
        var settings = instance(priority: 255, master: true)
        settings.authPassword = Array("secret".utf8)
        let router = makeRouter([settings, instance("B", vrid: 52, priority: 100),
                                 instance("V6", vrid: 53, version: 3, vips: ["2001:db8::1", "2001:db8::2"])])
        _ = router.start(now: 0)
        var random = SplitMix64(state: 15)
        let seeds: [VRRPReceived] = [
            advert(priority: 100, password: "secret"),
            advert(vrid: 52, priority: 50),
            advert(from: "fe80::2", vrid: 53, priority: 50, version: 3, vips: ["2001:db8::1", "2001:db8::2"]),
        ]
        var handled = 0
        for round in 0..<20_000 {
            var packet = seeds[round % seeds.count]
            switch round % 4 {
            case 0:   // random bytes of a random length
                packet.payload = (0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1:   // truncated
                packet.payload = Array(packet.payload.prefix(Int.random(in: 0..<packet.payload.count, using: &random)))
            case 2:   // a few bytes flipped
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    let at = Int.random(in: 0..<packet.payload.count, using: &random)
                    packet.payload[at] ^= UInt8.random(in: 1...255, using: &random)
                }
            default:  // the header fields set at random, checksum made right
                packet.payload[VRRPAdvert.Offset.virtualRouterID] = UInt8.random(in: 50...54, using: &random)
                packet.payload[VRRPAdvert.Offset.priority] = UInt8.random(in: 0...254, using: &random)
                packet.payload[VRRPAdvert.Offset.addressCount] = UInt8.random(in: 0...3, using: &random)
                packet.hopLimit = Bool.random(using: &random) ? 255 : UInt8.random(in: 0...255, using: &random)
                packet = resealed(packet, version: packet.payload[0] >> 4)
            }
            let before = router.status
            let accepted = before.map(\.advertsReceived).reduce(0, +)
            let actions = router.receive(packet, now: second)
            let after = router.status
            let nowAccepted = after.map(\.advertsReceived).reduce(0, +)
            handled += 1
            #expect(router.rejections.values.reduce(0, +) + nowAccepted == handled)
            if nowAccepted == accepted {
                #expect(actions.isEmpty && after == before)
            } else if before[0].state == .master && after[0].state != .master {
                // Only a valid advert at 255 from a higher address can take over from the owner.
                let message = try? VRRPAdvert.decode(packet.payload, ipv6: false).get()
                #expect(message?.priority == 255 && packet.source > ip("10.0.0.1"))
            }
        }
        #expect(state(router) == .master)
        #expect(state(router, "B") == .backup && state(router, "V6") == .backup)
    }
}
