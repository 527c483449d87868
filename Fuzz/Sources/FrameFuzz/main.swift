import Glibc
import LVSCore
import LVSModel

/// One engine with the seed's services (TCP 80, UDP 53, IPv6 TCP 80, persistence, a fwmark rule),
/// fed every input as a frame; time advances with each input so expiry runs too.
let engine: Engine = {
    var cfg = EngineConfiguration()
    cfg.connectionCapacity = 4096
    let e = Engine(configuration: cfg)
    e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: MACAddress(value: 0x0050_0000_0400),
                                     addresses: [(IPAddress("192.168.1.21")!, 24), (IPAddress("2001:db8:1::21")!, 64)])])
    let v4 = IPAddress("192.168.1.100")!
    let v6 = IPAddress("2001:db8:1::100")!
    let services: [(ServiceKey, ServiceOptions)] = [
        (ServiceKey(proto: .tcp, address: v4, port: 80), ServiceOptions(scheduler: "rr")),
        (ServiceKey(proto: .udp, address: v4, port: 53), ServiceOptions(scheduler: "mh")),
        (ServiceKey(proto: .tcp, address: v4, port: 443), ServiceOptions(scheduler: "sh", flags: .persistent, timeout: 60, netmask: 0xFFFF_FF00)),
        (ServiceKey(proto: .sctp, address: v4, port: 9), ServiceOptions(scheduler: "lblcr")),
        (ServiceKey(proto: .tcp, address: v6, port: 80), ServiceOptions(scheduler: "wlc", netmask: 128)),
        (ServiceKey(fwmark: 7, ipv6: false), ServiceOptions(scheduler: "wrr")),
    ]
    for (k, o) in services {
        try! e.addService(k, o)
        let reals = k.isIPv6 ? ["2001:db8:1::31", "2001:db8:1::32"] : ["192.168.1.31", "192.168.1.32"]
        for (i, r) in reals.enumerated() {
            try! e.addDestination(k, DestinationOptions(address: IPAddress(r)!, port: k.port, weight: Int32(i + 1)))
            e.setNeighbour(IPAddress(r)!, mac: MACAddress(value: UInt64(0x0050_0000_0100 * (i + 1))), interface: 2)
        }
    }
    e.setMarkRules([MarkRule(destination: IPAddress("192.168.2.0")!, prefixLength: 24, proto: .tcp, portLow: 1000, portHigh: 2000, mark: 7)])
    return e
}()
// libFuzzer calls `fuzz` from one thread only.
nonisolated(unsafe) var clock: UInt64 = 1_000_000_000

func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
    defer { buffer.deallocate() }
    if size > 0 { buffer.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size)) }
    _ = FrameParser.parse(UnsafeRawBufferPointer(buffer))
    engine.primary.prefetch(UnsafeRawBufferPointer(buffer))
    engine.primary.prefetchEntries()
    let verdict = engine.process(buffer, interface: 2, now: clock)
    if case let .reply(length) = verdict { precondition(length <= size && length >= 14, "reply larger than the frame") }
    clock &+= 50_000_000
    engine.tick(now: clock)
    return 0
}

/// libFuzzer's driver, called from our own main (SwiftPM owns the executable's entry point).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzz(data, size) })
