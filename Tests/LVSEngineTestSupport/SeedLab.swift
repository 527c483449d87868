import LVSCore
import LVSModel

/// The seed lab as the engine sees it, for the tests of the targets around LVSCore (LVSDataPlane's
/// fast-path bookkeeping, LVSDaemon): VIP 192.168.1.100:80 on interface 2, real server .31 with a
/// known MAC, a client at 192.168.1.12.
public enum SeedLab {
    public static let interface: Int32 = 2
    public static let vip = ServiceKey(proto: .tcp, address: IPAddress("192.168.1.100")!, port: 80)
    public static let rs1 = IPAddress("192.168.1.31")!
    public static let rs1MAC = MACAddress("00:50:00:00:01:00")!
    public static let directorMAC = MACAddress("00:50:00:00:04:00")!
    public static let clientMAC = MACAddress("00:50:00:00:03:00")!
    /// One second on the engine's clock (nanoseconds).
    public static let second: UInt64 = 1_000_000_000

    /// TCP flags of the segments the tests send.
    public static let syn: UInt8 = 0x02, ack: UInt8 = 0x10

    /// The director's interface: eth0, 192.168.1.21/24.
    public static var interfaces: [EngineInterface] {
        [EngineInterface(index: interface, name: "eth0", mac: directorMAC, addresses: [(IPAddress("192.168.1.21")!, 24)])]
    }

    /// An engine with the lab's interface and, when `seeded`, the VIP with real server .31 (MAC known).
    public static func engine(seeded: Bool = true) -> Engine {
        var cfg = EngineConfiguration()
        cfg.connectionCapacity = 1024
        let e = Engine(configuration: cfg)
        e.setInterfaces(interfaces)
        if seeded {
            try! e.addService(vip, ServiceOptions(scheduler: "rr"))
            try! e.addDestination(vip, DestinationOptions(address: rs1, port: 80))
            e.setNeighbour(rs1, mac: rs1MAC, interface: interface)
        }
        return e
    }

    /// The six bytes of `m`.
    public static func bytes(_ m: MACAddress) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 6)
        out.withUnsafeMutableBytes { m.store(to: $0.baseAddress!) }
        return out
    }

    /// Offsets in the IPv4 header below.
    private static let ipv4HeaderLength = 20, ipv4ChecksumOffset = 10

    /// A client's (192.168.1.12) IPv4 TCP segment with `flags` from `port` to the VIP, in an
    /// Ethernet frame to the director.
    public static func segment(port: UInt16, flags: UInt8) -> [UInt8] {
        var frame = bytes(directorMAC) + bytes(clientMAC) + [0x08, 0x00]
        var ip: [UInt8] = [0x45, 0, 0, 40, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 192, 168, 1, 12, 192, 168, 1, 100]
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: ipv4HeaderLength) })
        ip[ipv4ChecksumOffset] = UInt8(cs >> 8)
        ip[ipv4ChecksumOffset + 1] = UInt8(cs & 0xFF)
        frame += ip
        frame += [UInt8(port >> 8), UInt8(port & 0xFF), 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        return frame
    }

    /// `shard` processes the client's segment from `port` with `flags` at `now`.
    public static func send(_ shard: EngineShard, port: UInt16, flags: UInt8, at now: UInt64) -> Verdict {
        var frame = segment(port: port, flags: flags)
        return frame.withUnsafeMutableBytes { shard.process($0, interface: interface, now: now) }
    }
}
