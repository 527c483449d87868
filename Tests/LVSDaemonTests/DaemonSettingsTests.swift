import Foundation
import Testing
@testable import LVSDaemon
import LVSControl
import LVSCore
import LVSModel

/// lvsd's start-time settings (`--settings FILE`, `--set-sysctl`) and the control request that
/// changes them at run time, through `EngineControl` as lvsd's control socket runs it.
@Suite struct DaemonSettingsTests {
    /// The error `sysctlAssignments` throws, as lvsd prints it ("" if none).
    static func error(_ o: DaemonOptions) -> String {
        do { _ = try o.sysctlAssignments() } catch { return "\(error)" }
        return ""
    }

    @Test func theFileThenTheOptionsInOrder() throws {
        let path = NSTemporaryDirectory() + "lvsd-settings-\(getpid()).conf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# test\nsloppy_tcp = 1\nnet.ipv4.vs.conn_reuse_mode = 3\n".write(toFile: path, atomically: true, encoding: .utf8)
        var o = DaemonOptions()
        o.settingsFile = path
        o.setSysctl = ["conn_reuse_mode=0", "expire_nodest_conn=1"]
        let list = try o.sysctlAssignments()
        #expect(list == [SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.connReuseMode, 3),
                         SysctlAssignment(.connReuseMode, 0), SysctlAssignment(.expireNodestConn, 1)])
        var cfg = EngineConfiguration()
        for a in list { cfg.apply(a) }
        #expect(cfg.sysctlValues[.connReuseMode] == 0 && cfg.sloppyTCP && cfg.expireNodestConn)

        o.setSysctl = ["drop_entry=7"]
        #expect(Self.error(o).hasPrefix("--set-sysctl drop_entry=7: drop_entry: invalid value"))
        o.setSysctl = []
        o.settingsFile = path + ".missing"
        #expect(Self.error(o).hasPrefix("--settings \(path).missing: cannot read the file"))
    }

    @Test func theControlRequestSetsAllOrNothingAndStatusShowsTheValues() {
        let engine = Engine()
        let set = EngineControl.execute(.sysctl([SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.expireNodestConn, 1)]), on: engine, now: 0)
        guard case let .sysctls(values) = set else { Issue.record("answer \(set)"); return }
        #expect(values[.sloppyTCP] == 1 && values[.expireNodestConn] == 1)
        let refused = EngineControl.execute(.sysctl([SysctlAssignment(.sloppyTCP, 0), SysctlAssignment(.syncRetries, 1)]), on: engine, now: 0)
        #expect(refused == .failed(.invalid))
        #expect(engine.sysctls[.sloppyTCP] == 1)
        #expect(EngineControl.execute(.sysctl([]), on: engine, now: 0) == .sysctls(engine.sysctls))
        let status = EngineControl.status(engine)
        #expect(status.contains("sysctl: am_droprate=10 amemthresh=10 conn_reuse_mode=1 drop_entry=0 drop_packet=0 expire_nodest_conn=1"))
        #expect(status.contains(" sloppy_tcp=1 "))
    }
}
