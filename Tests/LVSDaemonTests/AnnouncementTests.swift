import Foundation
import Glibc
import CLVSShim
import LVSCore
import LVSDataPlane
import Synchronization
import Testing
@testable import LVSDaemon
import LVSModel

/// Routes kept in memory; `failing` prefixes are refused (as a failing `ip` would).
final class FakeAnnouncementRoutes: AnnouncementRoutes {
    struct State { var routes: Set<AnnouncedPrefix> = []; var failing: Set<AnnouncedPrefix> = []; var closed = false }
    let state = Mutex(State())
    var summary: String { "fake" }
    var routes: Set<AnnouncedPrefix> { state.withLock { $0.routes } }

    func apply(add: [AnnouncedPrefix], remove: [AnnouncedPrefix]) -> [(prefix: AnnouncedPrefix, error: String)] {
        state.withLock { s in
            var failed: [(AnnouncedPrefix, String)] = []
            for p in add { if s.failing.contains(p) { failed.append((p, "refused")) } else { s.routes.insert(p) } }
            for p in remove { if s.failing.contains(p) { failed.append((p, "refused")) } else { s.routes.remove(p) } }
            return failed
        }
    }

    func close() { state.withLock { $0.closed = true; $0.routes = [] } }
}

/// `--announce-table`: which VIPs are ready (`AnnouncementPolicy`), how the announcer follows
/// them with routes, and the kernel routes through lvsd's TUN device.
struct AnnouncementTests {
    static let vip = IPAddress("10.0.0.10")!, vip2 = IPAddress("10.0.0.11")!, vip6 = IPAddress("2001:db8::10")!
    static let rs = IPAddress("10.0.1.1")!

    static func service(_ vip: IPAddress, port: UInt16 = 80, weights: [Int32]) -> ServiceSnapshot {
        ServiceSnapshot(key: ServiceKey(proto: .tcp, address: vip, port: port), options: ServiceOptions(scheduler: "mh"),
                        destinations: weights.enumerated().map { i, w in
                            DestinationSnapshot(options: DestinationOptions(address: IPAddress(ipv4: 0x0A00_0101 + UInt32(i)), port: 80, weight: w))
                        })
    }

    static let running = AnnouncementPolicy.RunState(dataPlaneRunning: true, stopping: false)

    @Test func aVIPIsAnnouncedWhenOneOfItsServicesHasARealServerWithWeight() {
        let table = TableSnapshot(services: [Self.service(Self.vip, weights: [0, 1]), Self.service(Self.vip2, weights: [0]),
                                             Self.service(Self.vip2, port: 443, weights: []), Self.service(Self.vip6, weights: [5])])
        let states = AnnouncementPolicy.evaluate(table, rules: [], run: Self.running)
        #expect(states.map(\.description) == [
            "announce 10.0.0.10/32: announced",
            "announce 10.0.0.11/32: withheld (no available real server)",
            "announce 2001:db8::10/128: announced",
        ])
        // One service of the VIP with a real server is enough.
        let mixed = TableSnapshot(services: [Self.service(Self.vip, weights: [0]), Self.service(Self.vip, port: 443, weights: [1])])
        #expect(AnnouncementPolicy.evaluate(mixed, rules: [], run: Self.running).map(\.isAnnounced) == [true])
    }

    @Test func theFirstReasonThatAppliesIsTheOneGiven() {
        let table = TableSnapshot(services: [Self.service(Self.vip, weights: [1])])
        func reason(_ run: AnnouncementPolicy.RunState, previously: Set<AnnouncedPrefix> = []) -> [AnnouncementWithholding?] {
            AnnouncementPolicy.evaluate(table, rules: [], run: run, previously: previously).map(\.withheld)
        }
        #expect(reason(.init(dataPlaneRunning: false, stopping: false)) == [.dataPlaneNotRunning])
        #expect(reason(.init(dataPlaneRunning: true, stopping: true)) == [.stopping])
        #expect(reason(.init(dataPlaneRunning: false, stopping: true)) == [.stopping])
        #expect(reason(.init(dataPlaneRunning: true, stopping: false, notOwned: [Self.vip])) == [.notOwned])
        // A VIP whose service went stays listed, withheld.
        #expect(reason(Self.running, previously: [AnnouncedPrefix(host: Self.vip2)]) == [nil, .noService])
    }

    @Test func aFirewallMarkServiceIsAnnouncedThroughItsRules() {
        let fwm = ServiceSnapshot(key: ServiceKey(fwmark: 7, ipv6: false), options: ServiceOptions(scheduler: "mh"),
                                  destinations: [DestinationSnapshot(options: DestinationOptions(address: Self.rs, port: 0, weight: 1))])
        let rules = [MarkRule(destination: IPAddress("10.0.2.0")!, prefixLength: 24, proto: .tcp, mark: 7),
                     MarkRule(destination: IPAddress("10.0.3.1")!, prefixLength: 32, proto: nil, mark: 8),
                     MarkRule(destination: IPAddress("2001:db8::")!, prefixLength: 64, proto: nil, mark: 7)]
        let states = AnnouncementPolicy.evaluate(TableSnapshot(services: [fwm]), rules: rules, run: Self.running)
        #expect(states.map(\.description) == ["announce 10.0.2.0/24: announced"])
    }

    @Test func theAnnouncerFollowsTheTableWithRoutesAndCountsWithdrawals() {
        let routes = FakeAnnouncementRoutes()
        let table = Mutex(TableSnapshot(services: [Self.service(Self.vip, weights: [1]), Self.service(Self.vip2, weights: [1])]))
        let announcer = Announcer(routes: routes, rules: [], logger: Lab.logger, table: { table.withLock { $0 } })
        announcer.reconcile()
        #expect(routes.routes.isEmpty) // the data plane does not run yet
        announcer.setDataPlaneRunning(true)
        #expect(routes.routes == [AnnouncedPrefix(host: Self.vip), AnnouncedPrefix(host: Self.vip2)])
        // The health checks take vip2's last real server out: withdrawn.
        table.withLock { $0.services[1].destinations[0].options.weight = 0 }
        announcer.reconcile()
        #expect(routes.routes == [AnnouncedPrefix(host: Self.vip)])
        #expect(announcer.snapshot.withdrawals == [AnnouncedPrefix(host: Self.vip2): 1])
        #expect(announcer.statusLines == ["announcement: fake, 1 of 2 VIP(s) announced, 1 withdrawal(s)",
                                          "announce 10.0.0.10/32: announced",
                                          "announce 10.0.0.11/32: withheld (no available real server)"])
        // A route that cannot be added is not counted as installed, and is retried.
        table.withLock { $0.services[1].destinations[0].options.weight = 1 }
        routes.state.withLock { $0.failing = [AnnouncedPrefix(host: Self.vip2)] }
        announcer.reconcile()
        #expect(announcer.installed == [AnnouncedPrefix(host: Self.vip)])
        routes.state.withLock { $0.failing = [] }
        announcer.reconcile()
        #expect(announcer.installed == [AnnouncedPrefix(host: Self.vip), AnnouncedPrefix(host: Self.vip2)])
        // A graceful stop withdraws everything first; a second evaluation keeps it so.
        #expect(announcer.withdrawAll())
        #expect(routes.routes.isEmpty)
        announcer.reconcile()
        #expect(routes.routes.isEmpty)
        #expect(announcer.snapshot.states.allSatisfy { $0.withheld == .stopping })
        #expect(!announcer.withdrawAll()) // nothing left: no hold needed
        announcer.stop()
        #expect(routes.state.withLock { $0.closed })
    }

    @Test func theAnnouncerThreadReactsToAChange() {
        let routes = FakeAnnouncementRoutes()
        let table = Mutex(TableSnapshot())
        let announcer = Announcer(routes: routes, rules: [], logger: Lab.logger, table: { table.withLock { $0 } })
        announcer.setDataPlaneRunning(true)
        announcer.start()
        defer { announcer.stop() }
        table.withLock { $0.services = [Self.service(Self.vip, weights: [1])] }
        announcer.changed()
        #expect(Lab.waitUntil(seconds: 10) { routes.routes == [AnnouncedPrefix(host: Self.vip)] })
    }

    @Test func theOptionsAreChecked() throws {
        var o = DaemonOptions()
        #expect(try o.validatedAnnouncement() == nil)
        for table in [100, 1, 252, 256, 4_294_967_295] {
            o.announceTable = table
            #expect(try o.validatedAnnouncement() == UInt32(table))
        }
        for table in [0, 253, 254, 255, 4_294_967_296, -1] {
            o.announceTable = table
            #expect(throws: ServerError.self) { try o.validatedAnnouncement() }
        }
        o.announceTable = 100
        o.announceHold = -1
        #expect(throws: ServerError.self) { try o.validatedAnnouncement() }
        o.announceHold = 3601
        #expect(throws: ServerError.self) { try o.validatedAnnouncement() }
    }
}

/// The kernel side, as root in a namespace of the test's own: routes in table T through the TUN
/// device, and the device with its routes gone when its descriptor closes (as at lvsd's death,
/// `kill -9` included: the kernel closes the descriptors of a dead process).
@Suite(.enabled(if: geteuid() == 0, "root: a network namespace and a TUN device"))
struct KernelAnnouncementRoutesTests {
    /// Runs `body` on a new thread in a new network namespace `name`, removed afterwards. The
    /// test awaits the thread without holding one of the concurrency pool's threads: commands
    /// (swift-subprocess) need a free one, and other tests' commands hold theirs. Every wait in
    /// `body` is bounded.
    static func inNewNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                do { try ExternalCommand.check(["ip", "netns", "add", name]) } catch {
                    continuation.resume(throwing: error)
                    return
                }
                let result: Result<T, any Error>
                if clvs_setns_net("/run/netns/\(name)") != 0 {
                    result = .failure(ServerError("setns \(name): errno \(errno)"))
                } else {
                    result = Result { try body() }
                }
                // Before the test goes on (the process may end right after): `ip netns del`
                // unmounts the name, from inside the namespace too.
                _ = try? ExternalCommand.run(["ip", "netns", "del", name])
                continuation.resume(with: result)
            }
            thread.start()
        }
    }

    @Test func routesGoThroughTheDeviceAndTheWatcherDeletesThemAtTheEnd() async throws {
        let seen = try await Self.inNewNamespace("lvsann-test-\(getpid())") { () throws -> [String: String] in
            var seen: [String: String] = [:]
            func show() throws -> String {
                try ExternalCommand.check(["ip", "route", "show", "table", "4200"]) + ExternalCommand.check(["ip", "-6", "route", "show", "table", "4200"])
            }
            func links() throws -> String { try ExternalCommand.check(["ip", "-o", "link"]) }
            /// Polls (every 50 ms, 10 s at most) until `done` holds for `show()`'s output; the last output.
            func wait(_ done: (String) -> Bool) throws -> String {
                var text = try show()
                for _ in 0..<200 where !done(text) {
                    usleep(50_000)
                    text = try show()
                }
                return text
            }
            let routes = try KernelAnnouncementRoutes(table: 4200)
            let v4 = AnnouncedPrefix("10.0.0.10/32")!, v6 = AnnouncedPrefix("2001:db8::10/128")!
            let failed = routes.apply(add: [v4, v6], remove: [])
            guard failed.isEmpty else { throw ServerError("\(failed)") }
            seen["listed"] = try show()
            // Removing one, and one already gone (not an error).
            let second = routes.apply(add: [v4, AnnouncedPrefix("10.0.0.11/32")!], remove: [AnnouncedPrefix("10.0.0.99/32")!])
            guard second.isEmpty else { throw ServerError("\(second)") }
            let third = routes.apply(add: [], remove: [AnnouncedPrefix("10.0.0.11/32")!])
            guard third.isEmpty else { throw ServerError("\(third)") }
            seen["afterRemove"] = try show()
            // lvsd's death as the watcher sees it: while the device is still held, the watcher
            // deletes the routes itself (a deletion FRR hears; the kernel's own, with the device, is silent for IPv4).
            routes.endLifeline()
            seen["afterLifeline"] = try wait { !$0.contains("lvsann") }
            seen["linksWhileHeld"] = try links()
            routes.close()
            var l = try links()
            for _ in 0..<200 where l.contains(routes.device) {
                usleep(50_000)
                l = try links()
            }
            seen["linksAfterClose"] = l
            return seen
        }
        #expect(seen["listed"]?.contains("10.0.0.10 dev lvsann0 proto static") == true, "\(seen)")
        #expect(seen["listed"]?.contains("2001:db8::10 dev lvsann0 proto static") == true, "\(seen)")
        #expect(seen["afterRemove"]?.contains("10.0.0.10 dev lvsann0") == true, "\(seen)")
        #expect(seen["afterRemove"]?.contains("10.0.0.11") == false, "\(seen)")
        #expect(seen["afterLifeline"]?.contains("lvsann") == false, "routes left after the watcher's end: \(seen)")
        #expect(seen["linksWhileHeld"]?.contains("lvsann0") == true, "\(seen)")
        #expect(seen["linksAfterClose"]?.contains("lvsann0") == false, "device left: \(seen)")
    }

    @Test func aFailingRouteIsNamed() {
        #expect(KernelAnnouncementRoutes.failedLines("RTNETLINK answers: No such process\nCommand failed -:2\nError: x\nCommand failed -:5\n")
                == [2: "RTNETLINK answers: No such process", 5: "Error: x"])
    }
}
