import Foundation
import LVSCore
import LVSDataPlane
import LVSModel
import LVSSystem
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

    /// `ip -j route get ADDRESS`, decoded (nil: no answer, or none through lvsd's interfaces).
    static func ipRouteGet(_ address: IPAddress, interfaces: [EngineInterface]) -> TunnelRoute? {
        (try? ExternalCommand.run(["ip", "-j", "route", "get", address.description])).flatMap { r in
            r.status == 0 ? parse(r.output, interfaces: interfaces, address: address, interfaceMTU: sysfsMTU) : nil
        }
    }

    /// An interface's name among lvsd's, else its index.
    static func name(_ index: Int32, _ interfaces: [EngineInterface]) -> String {
        interfaces.first { $0.index == index }?.name ?? "\(index)"
    }

    /// A route as `ip route` writes one: "dev eth0 via 192.168.1.254 src 192.168.1.21 mtu 1500".
    static func describe(_ route: TunnelRoute, _ interfaces: [EngineInterface]) -> String {
        "dev \(name(route.interface, interfaces))" + (route.gateway.map { " via \($0)" } ?? "")
            + " src \(route.source) mtu \(route.mtu)"
    }

    /// An interface's MTU from sysfs.
    static func sysfsMTU(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/class/net/\(name)/mtu", encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// Keeps the engine's tunnel routes current: a new tunnel real server's route is looked up
/// within a second of `-a`; every route again when the kernel reports a route, address or link
/// change (rtnetlink notifications: one pass per burst, `coalesce` after its first notification)
/// or lost notifications, and at the latest every `refresh` (the safety refresh). Runs
/// `ip route get` on a thread of its own, never on a worker.
///
/// `@unchecked Sendable`: `stopped` is behind its Mutex; `known`, `schedule` and `notifications`
/// belong to the watcher's thread (a test calls `turn` on its own, with no thread started).
final class TunnelRouteWatcher: @unchecked Sendable {
    weak var engine: Engine?
    let logger: Logger
    /// How long a turn waits at most (ms): a new tunnel address is looked up within it.
    static let newAddressPollMs = 1000
    /// From a burst's first notification to its pass.
    static let coalesce: UInt64 = 75_000_000
    /// Notice-driven passes are at least this far apart (each pass runs `ip route get` per
    /// tunnel real server; a table in constant change must not fork them without pause).
    static let spacing: UInt64 = 1_000_000_000
    /// `--tunnel-route-refresh`: the default and the range, in seconds.
    static let defaultRefreshSeconds = 60
    static let refreshRange = 1...86_400
    private let stopped = Mutex(false)
    /// Per address: the route last found (nil: none through lvsd's interfaces).
    private var known: [IPAddress: TunnelRoute?] = [:]
    private var schedule: RouteRefreshSchedule
    private var notifications: RouteNotificationSocket?
    private let lookUpRoute: (IPAddress, [EngineInterface]) -> TunnelRoute?
    private let clock: () -> UInt64

    /// `notifications` nil: the routes are looked up every `refreshSeconds` only.
    init(engine: Engine, logger: Logger, refreshSeconds: Int = defaultRefreshSeconds,
         notifications: RouteNotificationSocket?,
         lookUpRoute: @escaping (IPAddress, [EngineInterface]) -> TunnelRoute? = RouteLookup.ipRouteGet,
         clock: @escaping () -> UInt64 = monotonicNanoseconds) {
        self.engine = engine
        self.logger = logger
        self.notifications = notifications
        self.lookUpRoute = lookUpRoute
        self.clock = clock
        schedule = RouteRefreshSchedule(coalesce: Self.coalesce, refresh: UInt64(refreshSeconds) * 1_000_000_000,
                                        spacing: Self.spacing, now: clock())
    }

    /// lvsd's watcher: `refreshSeconds` checked, the notification socket opened (without it,
    /// a warning, and the safety refresh alone follows the routes).
    static func make(engine: Engine, logger: Logger, refreshSeconds: Int) throws -> TunnelRouteWatcher {
        guard refreshRange.contains(refreshSeconds) else {
            throw ServerError("--tunnel-route-refresh must be from \(refreshRange.lowerBound) to \(refreshRange.upperBound) seconds, got \(refreshSeconds)")
        }
        var socket: RouteNotificationSocket?
        do { socket = try RouteNotificationSocket.open() } catch {
            logger.warning("no route notifications: tunnel routes are looked up every \(refreshSeconds) s only",
                           metadata: ["error": "\(error)"])
        }
        return TunnelRouteWatcher(engine: engine, logger: logger, refreshSeconds: refreshSeconds, notifications: socket)
    }

    func start() {
        let t = Thread { [self] in
            while !stopped.withLock({ $0 }), let engine {
                turn(engine, maxWaitMs: Self.newAddressPollMs)
            }
        }
        t.name = "lvsd-tunnel-routes"
        t.start()
    }

    func stop() { stopped.withLock { $0 = true } }

    /// One turn of the loop: waits up to `maxWaitMs` (less when a pass is due sooner) for
    /// notifications and reads them; then looks up every tunnel address when a pass is due, else
    /// the new ones. Returns whether it made a full pass.
    @discardableResult
    func turn(_ engine: Engine, maxWaitMs: Int) -> Bool {
        let now = clock()
        let untilPass = schedule.nextPass > now ? (schedule.nextPass - now + 999_999) / 1_000_000 : 0
        let wait = Int32(min(UInt64(max(0, maxWaitMs)), untilPass))
        if let notifications {
            var pfd = pollfd(fd: notifications.fd, events: Int16(POLLIN), revents: 0)
            let ready = (try? syscall("poll") { poll(&pfd, 1, wait) }) ?? 0
            if ready > 0 {
                do {
                    let notice = try notifications.drain()
                    if notice == .overflowed {
                        logger.notice("route notifications lost (the socket overflowed): every tunnel route is looked up again")
                    }
                    schedule.note(notice, at: clock())
                } catch {
                    logger.warning("route notifications failed: tunnel routes are looked up every \(schedule.refresh / 1_000_000_000) s only",
                                   metadata: ["error": "\(error)"])
                    self.notifications = nil
                    schedule.note(.overflowed, at: clock())
                }
            }
        } else if wait > 0 {
            Thread.sleep(forTimeInterval: Double(wait) / 1000)
        }
        let full = schedule.take(at: clock())
        if full { logger.debug("tunnel routes looked up again") }
        lookUp(engine, all: full)
        return full
    }

    /// Looks up the route of every tunnel address (`all`), or of the ones not looked up yet;
    /// logs each change and gives it to the engine.
    func lookUp(_ engine: Engine, all: Bool) {
        let addresses = engine.tunnelAddresses()
        known = known.filter { addresses.contains($0.key) }
        let interfaces = engine.tunnelInterfaces()
        for a in addresses where all || known[a] == nil {
            let route = lookUpRoute(a, interfaces)
            let before = known[a]
            known[a] = .some(route)
            if let before, before == route { continue }
            if let route {
                var metadata: Logger.Metadata = [
                    "real_server": "\(a)", "interface": "\(RouteLookup.name(route.interface, interfaces))",
                    "gateway": "\(route.gateway.map { "\($0)" } ?? "on-link")", "source": "\(route.source)", "mtu": "\(route.mtu)"]
                if let was = before.flatMap({ $0 }) { metadata["was"] = "\(RouteLookup.describe(was, interfaces))" }
                logger.info("tunnel real server route", metadata: metadata)
            } else {
                logger.warning("no route to a tunnel real server through lvsd's interfaces; its packets are dropped",
                               metadata: ["real_server": "\(a)"])
            }
            engine.setTunnelRoute(a, route)
        }
    }
}
