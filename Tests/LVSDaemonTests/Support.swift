import Foundation
import Glibc
import LVSControl
import LVSCore
@testable import LVSDaemon
import Logging
import LVSModel
import LVSSystem

/// The seed lab's addresses: VIP 192.168.1.100:80 on interface 2, real servers .31 and .32.
enum Lab {
    static let interface: Int32 = 2
    static let vip = ServiceKey(proto: .tcp, address: IPAddress("192.168.1.100")!, port: 80)
    static let rs1 = IPAddress("192.168.1.31")!
    static let rs1MAC = MACAddress("00:50:00:00:01:00")!
    static let directorMAC = MACAddress("00:50:00:00:04:00")!
    static let clientMAC = MACAddress("00:50:00:00:03:00")!
    static let second: UInt64 = 1_000_000_000
    static let logger = Logger(label: "lvsd-test")

    static var interfaces: [EngineInterface] {
        [EngineInterface(index: interface, name: "eth0", mac: directorMAC, addresses: [(IPAddress("192.168.1.21")!, 24)])]
    }

    /// An engine with the lab's interface, optionally the VIP with real server .31 (MAC known).
    static func engine(seeded: Bool = true) -> Engine {
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

    static func bytes(_ m: MACAddress) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 6)
        out.withUnsafeMutableBytes { m.store(to: $0.baseAddress!) }
        return out
    }

    /// A client's (192.168.1.12) IPv4 TCP segment to the VIP.
    static func segment(port: UInt16, flags: UInt8) -> [UInt8] {
        var b = bytes(directorMAC) + bytes(clientMAC) + [0x08, 0x00]
        var ip: [UInt8] = [0x45, 0, 0, 40, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 192, 168, 1, 12, 192, 168, 1, 100]
        let cs = InternetChecksum.finish(ip.withUnsafeBytes { InternetChecksum.sum($0.baseAddress!, count: 20) })
        ip[10] = UInt8(cs >> 8); ip[11] = UInt8(cs & 0xFF)
        b += ip
        b += [UInt8(port >> 8), UInt8(port & 0xFF), 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        return b
    }

    static let syn: UInt8 = 0x02, ack: UInt8 = 0x10

    /// Polls `condition` every 10 ms until it holds or `seconds` pass.
    static func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// A temporary directory, removed with its content by `remove()`.
struct TempDir {
    let path: String
    init() {
        var template = Array("/tmp/lvsd-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A control-socket client: one JSON line out, one JSON line back (SO_RCVTIMEO bounds each read).
final class ControlClient {
    let fd: Int32

    init?(path: String, timeoutSeconds: Int = 10) {
        guard let address = RawSocketAddress.unix(path: path),
              let fd = try? SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue)) else { return nil }
        self.fd = fd
        guard (try? SocketSetup.setOption(fd, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: timeoutSeconds, tv_usec: 0), name: "SO_RCVTIMEO")) != nil,
              (try? SocketSetup.connect(fd, to: address)) != nil else { close(fd); return nil }
    }

    deinit { close(fd) }

    func send(raw: [UInt8]) -> Bool {
        raw.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == raw.count
    }

    /// The next line (without its newline), nil on timeout or end of stream.
    func readLine() -> [UInt8]? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = recv(fd, &byte, 1, 0)
            guard n == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return line }
            line.append(byte)
        }
    }

    func request(_ r: ControlRequest) -> ControlResponse? {
        guard let data = try? JSONEncoder().encode(r), send(raw: Array(data) + [UInt8(ascii: "\n")]),
              let line = readLine() else { return nil }
        return try? JSONDecoder().decode(ControlResponse.self, from: Data(line))
    }
}
