import Foundation
import LVSCore
import LVSDataPlane
import LVSModel
import Logging
import Synchronization

/// The route to a tunnelled real server, from `ip -j route get ADDRESS`: egress interface
/// (one of lvsd's), gateway, preferred source, MTU (the route's, else the interface's).
enum RouteLookup {
    /// Decodes `ip -j route get`'s answer; nil when it names no interface of lvsd's or no source.
    static func parse(_ json: String, interfaces: [EngineInterface], address: IPAddress,
                      interfaceMTU: (String) -> Int?) -> TunnelRoute? {
        guard let data = json.data(using: .utf8),
              let list = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]],
              let route = list.first, let dev = route["dev"] as? String,
              let ifc = interfaces.first(where: { $0.name == dev }) else { return nil }
        let gateway = (route["gateway"] as? String).flatMap(IPAddress.init)
        let source = (route["prefsrc"] as? String).flatMap(IPAddress.init)
            ?? ifc.addresses.first { $0.0.isIPv4 == address.isIPv4 }?.0
        guard let source else { return nil }
        var mtu: Int?
        if let metrics = route["metrics"] as? [[String: Any]] {
            mtu = metrics.compactMap { $0["mtu"] as? Int }.first
        }
        return TunnelRoute(interface: ifc.index, gateway: gateway, source: source,
                           mtu: mtu ?? interfaceMTU(dev) ?? 1500)
    }

    /// An interface's MTU from sysfs.
    static func sysfsMTU(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/mtu", encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Keeps the engine's tunnel routes current: a new tunnel real server's route is looked up
/// within a second of `-a`, and every route again every `refresh` (a route change is followed
/// then). Runs `ip route get` on a thread of its own, never on a worker.
///
/// `@unchecked Sendable`: `stopped` is atomic; `known` belongs to the watcher's thread.
final class TunnelRouteWatcher: @unchecked Sendable {
    weak var engine: Engine?
    let logger: Logger
    static let poll: TimeInterval = 1
    static let refresh: UInt64 = 10_000_000_000
    private let stopped = Mutex(false)
    /// Per address: when it was last looked up (monotonic ns) and what was found.
    private var known: [IPAddress: (at: UInt64, route: TunnelRoute?)] = [:]

    init(engine: Engine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    func start() {
        let t = Thread { [self] in
            while !stopped.withLock({ $0 }), let engine {
                lookUp(engine)
                Thread.sleep(forTimeInterval: Self.poll)
            }
        }
        t.name = "lvsd-tunnel-routes"
        t.start()
    }

    func stop() { stopped.withLock { $0 = true } }

    func lookUp(_ engine: Engine) {
        let now = monotonicNanoseconds()
        let addresses = engine.tunnelAddresses()
        known = known.filter { addresses.contains($0.key) }
        for a in addresses {
            if let k = known[a], now &- k.at < Self.refresh { continue }
            let route = (try? ExternalCommand.run(["ip", "-j", "route", "get", a.description])).flatMap { r in
                r.status == 0 ? RouteLookup.parse(r.output, interfaces: engine.tunnelInterfaces(), address: a,
                                                 interfaceMTU: RouteLookup.sysfsMTU) : nil
            }
            if route == nil && known[a]?.route != nil || known[a] == nil && route == nil {
                logger.warning("no route to a tunnel real server through lvsd's interfaces; its packets are dropped",
                               metadata: ["real_server": "\(a)"])
            } else if let route, route != known[a]?.route {
                logger.info("tunnel real server route", metadata: [
                    "real_server": "\(a)", "gateway": "\(route.gateway.map { "\($0)" } ?? "on-link")",
                    "source": "\(route.source)", "mtu": "\(route.mtu)"])
            }
            known[a] = (now, route)
            engine.setTunnelRoute(a, route)
        }
    }
}
