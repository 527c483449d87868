import Foundation
import LVSCore
import LVSDataPlane
import LVSModel
import Logging

extension DaemonOptions {
    /// Routing tables the kernel reserves: 253 default, 254 main, 255 local.
    static let reservedRoutingTables: ClosedRange<Int> = 253...255
    /// The largest `--announce-hold`: an hour.
    static let maximumAnnounceHold = 3600

    /// `--announce-table` (nil: off) checked: 1...4294967295 but not 253-255; `--announce-hold`
    /// 0...3600 seconds. An error names the option.
    public func validatedAnnouncement() throws -> UInt32? {
        guard (0...Self.maximumAnnounceHold).contains(announceHold) else {
            throw ServerError("--announce-hold must be from 0 to \(Self.maximumAnnounceHold) seconds, got \(announceHold)")
        }
        guard let table = announceTable else { return nil }
        guard (1...Int(UInt32.max)).contains(table), !Self.reservedRoutingTables.contains(table) else {
            throw ServerError("--announce-table must be a routing table from 1 to 4294967295 other than 253 (default), 254 (main) and 255 (local), got \(table)")
        }
        return UInt32(table)
    }
}

extension LVSD {
    /// Step 4b (`--announce-table`): the announcement device, before anything is announced; the
    /// status lines and the configuration changes reach the announcer from here on.
    func openAnnouncer() throws {
        guard let table = try options.validatedAnnouncement() else { return }
        let logger = self.logger
        let routes = try KernelAnnouncementRoutes(table: table) { status in
            // It ends at lvsd's stop (0); otherwise lvsd's death would withdraw through the device alone.
            if status == 0 {
                logger.debug("announcement watcher ended")
            } else {
                logger.warning("announcement watcher ended (status \(status)): at lvsd's death FRR would not hear the IPv4 withdrawals")
            }
        }
        let engine = self.engine!
        let announcer = Announcer(routes: routes, rules: rules, logger: logger,
                                  table: { engine.snapshot() }, notOwned: { engine.notOwnedVIPs })
        undo.add { announcer.stop() }
        director.announcementStatus = { announcer.statusLines }
        self.announcer = announcer
        logger.info("announcing ready VIPs as routes", metadata: ["table": "\(table)", "device": "\(routes.device)",
                                                                   "hold_s": "\(options.announceHold)"])
    }

    /// Step 6b: the data plane forwards: ready VIPs are announced from now on.
    func startAnnouncer() {
        guard let announcer else { return }
        announcer.setDataPlaneRunning(true)
        announcer.start()
    }
}

extension DirectorService {
    /// The first step of a stop with `--announce-table`: every route is withdrawn, then lvsd
    /// goes on forwarding for `announceHold` seconds while the routers move the flows to the
    /// other directors; a second SIGTERM (or SIGINT) ends the hold at once. No hold when nothing
    /// was announced.
    func withdrawAndHold() async {
        guard let announcer, announcer.withdrawAll(), announceHold > 0 else { return }
        // The stop signal that started this stop, if a signal did; one more ends the hold.
        let seen = ProcessSignals.stopSignal == nil ? 0 : 1
        logger.notice("VIPs withdrawn; forwarding for \(announceHold) s before stopping (a second SIGTERM stops at once)")
        let deadline = monotonicNanoseconds() + UInt64(announceHold) * 1_000_000_000
        while monotonicNanoseconds() < deadline {
            if ProcessSignals.stopCount > seen {
                logger.notice("second stop signal: hold ended")
                return
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
