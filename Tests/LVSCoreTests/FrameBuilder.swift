@testable import LVSCore
import LVSModel

/// Builds test frames byte by byte.
struct FrameBuilder {
    static let clientMAC = MACAddress("00:50:00:00:03:00")!
    static let directorMAC = MACAddress("00:50:00:00:04:00")!

    static func ipv4TCP(src: String, sport: UInt16, dst: String, dport: UInt16, flags: UInt8, payload: Int = 0,
                        ttl: UInt8 = 64, vlan: Bool = false, fragmentOffset: UInt16 = 0, moreFragments: Bool = false,
                        id: UInt16 = 0x1234) -> [UInt8] {
        var b: [UInt8] = []
        b += mac(directorMAC) + mac(clientMAC)
        if vlan { b += [0x81, 0x00, 0x00, 0x05] }
        b += [0x08, 0x00]
        let l4 = fragmentOffset == 0 ? 20 + payload : payload
        let total = 20 + l4
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(id >> 8), UInt8(id & 0xFF)]
        let frag = (moreFragments ? 0x2000 : 0) | Int(fragmentOffset)
        ip += [UInt8(frag >> 8), UInt8(frag & 0xFF), ttl, 6, 0, 0]
        ip += v4(src) + v4(dst)
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8); ip[11] = UInt8(cs & 0xFF)
        b += ip
        if fragmentOffset == 0 {
            b += [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF)]
            b += [0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        }
        b += [UInt8](repeating: 0xAB, count: payload)
        return b
    }

    static func ipv4UDP(src: String, sport: UInt16, dst: String, dport: UInt16, payload: Int = 8) -> [UInt8] {
        var b = mac(directorMAC) + mac(clientMAC) + [0x08, 0x00]
        let total = 28 + payload
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0]
        ip += v4(src) + v4(dst)
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8); ip[11] = UInt8(cs & 0xFF)
        b += ip
        b += [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF), UInt8((8 + payload) >> 8), UInt8((8 + payload) & 0xFF), 0, 0]
        b += [UInt8](repeating: 0x55, count: payload)
        return b
    }

    static func ipv6TCP(src: String, sport: UInt16, dst: String, dport: UInt16, flags: UInt8, hopByHop: Bool = false) -> [UInt8] {
        var b = mac(directorMAC) + mac(clientMAC) + [0x86, 0xDD]
        let ext: [UInt8] = hopByHop ? [6, 0, 1, 4, 0, 0, 0, 0] : []
        let payload = ext.count + 20
        b += [0x60, 0, 0, 0, UInt8(payload >> 8), UInt8(payload & 0xFF), hopByHop ? 0 : 6, 64]
        b += v6(src) + v6(dst) + ext
        b += [UInt8(sport >> 8), UInt8(sport & 0xFF), UInt8(dport >> 8), UInt8(dport & 0xFF)]
        b += [0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        return b
    }

    static func arpRequest(senderIP: String, targetIP: String) -> [UInt8] {
        var b = mac(.broadcast) + mac(clientMAC) + [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]
        b += mac(clientMAC) + v4(senderIP) + [0, 0, 0, 0, 0, 0] + v4(targetIP)
        b += [UInt8](repeating: 0, count: 18)
        return b
    }

    static func arpReply(senderMAC: MACAddress, senderIP: String, targetIP: String) -> [UInt8] {
        var b = mac(directorMAC) + mac(senderMAC) + [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]
        b += mac(senderMAC) + v4(senderIP) + mac(directorMAC) + v4(targetIP)
        return b
    }

    static func mac(_ m: MACAddress) -> [UInt8] { (0..<6).map { UInt8(truncatingIfNeeded: m.value >> UInt64(40 - 8 * $0)) } }
    static func v4(_ s: String) -> [UInt8] { let v = IPAddress(s)!.ipv4Value; return [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    static func v6(_ s: String) -> [UInt8] {
        let a = IPAddress(s)!
        return (0..<8).map { UInt8(truncatingIfNeeded: a.high >> UInt64(56 - 8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: a.low >> UInt64(56 - 8 * $0)) }
    }
}
