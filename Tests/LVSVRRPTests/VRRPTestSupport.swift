import LVSModel
@testable import LVSVRRP

/// Nanoseconds per second / millisecond, for readable timelines.
let second: VRRPNanoseconds = 1_000_000_000
let millisecond: VRRPNanoseconds = 1_000_000

func ip(_ text: String) -> IPAddress { IPAddress(text)! }

/// Bytes from a hex string (spaces ignored).
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// An instance on eth0 with the given settings and /32 (or /128) virtual addresses.
func instance(_ name: String = "VI_1", vrid: UInt8 = 51, priority: UInt8 = 100, master: Bool = false,
              version: UInt8 = 2, interval: UInt16 = 100, vips: [String] = ["10.0.0.100"],
              interface: String = "eth0") -> VRRPInstanceSettings {
    var settings = VRRPInstanceSettings(name: name, interface: interface, virtualRouterID: vrid)
    settings.priority = priority
    settings.initialMaster = master
    settings.version = version
    settings.advertIntervalCentiseconds = interval
    settings.virtualAddresses = vips.map { VRRPAddress(address: ip($0), prefixLength: ip($0).isIPv4 ? 32 : 128) }
    return settings
}

/// A router for these instances with eth0 up as 10.0.0.1 / fe80::1 (and any extra interfaces),
/// not started yet.
func makeRouter(_ instances: [VRRPInstanceSettings], configure: (inout VRRPConfiguration) -> Void = { _ in },
                interfaces: [String] = ["eth0"]) -> VRRPRouter {
    var configuration = VRRPConfiguration()
    configuration.instances = instances
    configure(&configuration)
    let router = VRRPRouter(configuration: configuration, now: 0)
    for name in interfaces {
        _ = router.setInterface(name, up: true, primaryIPv4: ip("10.0.0.1"), primaryIPv6LinkLocal: ip("fe80::1"), now: 0)
    }
    return router
}

/// An advert as another router would send it, ready for `receive`.
func advert(from source: String = "10.0.0.2", to destination: String? = nil, vrid: UInt8 = 51, priority: UInt8,
            version: UInt8 = 2, interval: UInt16 = 100, vips: [String] = ["10.0.0.100"], password: String? = nil,
            hopLimit: UInt8 = 255, interface: String = "eth0") -> VRRPReceived {
    let src = ip(source)
    let dst = destination.map(ip) ?? (src.isIPv4 ? VRRPAdvert.ipv4Group : VRRPAdvert.ipv6Group)
    var message = VRRPAdvert.Message(version: version, virtualRouterID: vrid, priority: priority,
                                     intervalCentiseconds: interval, addresses: vips.map(ip))
    if let password {
        message.authType = VRRPAdvert.authPassword
        message.authData = VRRPAdvert.authData(password: Array(password.utf8))
    }
    return VRRPReceived(interface: interface, source: src, destination: dst, hopLimit: hopLimit,
                        payload: VRRPAdvert.encode(message, source: src, destination: dst))
}

/// The state an instance is in.
func state(_ router: VRRPRouter, _ name: String = "VI_1") -> VRRPState? {
    router.status.first { $0.name == name }?.state
}

/// The adverts among the actions: (destination, decoded message).
func sentAdverts(_ actions: [VRRPAction]) -> [(destination: IPAddress, message: VRRPAdvert.Message)] {
    actions.compactMap { action in
        guard case .send(_, _, let source, let destination, let bytes) = action,
              case .success(let message) = VRRPAdvert.decode(bytes, ipv6: !source.isIPv4) else { return nil }
        return (destination, message)
    }
}

/// A short name for each action, to check the order of a transition.
func kinds(_ actions: [VRRPAction]) -> [String] {
    actions.map { action in
        switch action {
        case .send(_, _, _, _, let bytes): return "send(\(bytes[VRRPAdvert.Offset.priority]))"
        case .stateChanged(_, _, let to, _): return "state(\(to.rawValue))"
        case .takeAddresses: return "take"
        case .releaseAddresses: return "release"
        case .announce(_, _, let count): return "announce(\(count))"
        case .runScript(let command, _): return "script(\(command.command))"
        case .syncRole(_, let master): return "sync(\(master ? "master" : "backup"))"
        }
    }
}
