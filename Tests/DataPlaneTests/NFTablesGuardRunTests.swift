import XCTest
import LVSCore
import LVSModel
@testable import LVSDataPlane

/// How many `nft` runs the afpacket kernel guard makes: lvsd updates it once per control batch
/// (see LVSControlTests' ControlBatchTests), and an update that keeps the VIPs and fwmark rules
/// runs none. A counting runner stands in for `nft`: nothing is installed.
final class NFTablesGuardRunTests: XCTestCase {
    final class Runs {
        var scripts: [String] = []
    }

    private func vip(_ last: Int, port: UInt16 = 80) -> VIPMatch {
        VIPMatch(address: IPAddress("10.99.0.\(last)")!, proto: 6, port: port)
    }

    func testAnUpdateRunsNftOnceAndOnlyWhenSomethingChanged() throws {
        let runs = Runs()
        let guardTable = try NFTablesGuard(interfaces: ["lo"], vips: [], pid: 42) { runs.scripts.append($0) }
        XCTAssertEqual(runs.scripts.count, 1) // the table
        // A batch that added ten services: one run with all of them.
        let ten = (1...10).map { vip($0) }
        try guardTable.update(vips: ten, marks: [])
        XCTAssertEqual(runs.scripts.count, 2)
        for v in ten { XCTAssertTrue(runs.scripts[1].contains("\(v.address) . 6 . 80"), runs.scripts[1]) }
        // Batches that add, reweight or remove real servers keep the VIPs: no run (in any order).
        try guardTable.update(vips: ten.reversed(), marks: [])
        try guardTable.update(vips: ten)
        XCTAssertEqual(runs.scripts.count, 2)
        // A changed VIP set or fwmark rule set: one run each.
        try guardTable.update(vips: Array(ten.dropLast()), marks: [])
        let rule = MarkRule(destination: IPAddress("10.99.1.0")!, prefixLength: 24, proto: .tcp, portLow: 80, portHigh: 80, mark: 1)
        try guardTable.update(vips: Array(ten.dropLast()), marks: [rule])
        XCTAssertEqual(runs.scripts.count, 4)
        try guardTable.remove()
        XCTAssertEqual(runs.scripts.last, "delete table netdev lvsd_42\n")
    }

    func testAFailedRunIsTriedAgainByTheNextUpdate() throws {
        let runs = Runs()
        var fail = false
        let guardTable = try NFTablesGuard(interfaces: ["lo"], vips: [], pid: 42) { script in
            runs.scripts.append(script)
            if fail { throw DataPlaneError.commandFailed(command: "nft -f -", status: 1, output: "busy") }
        }
        fail = true
        XCTAssertThrowsError(try guardTable.update(vips: [vip(1)]))
        XCTAssertEqual(guardTable.vips, [])
        fail = false
        try guardTable.update(vips: [vip(1)])
        XCTAssertEqual(runs.scripts.count, 3)
        XCTAssertEqual(guardTable.vips, [vip(1)])
    }

    /// A restart's next lvsd removes the guard the previous one left once that process has ended,
    /// also while it is a zombie its parent has not reaped yet; never a running process's.
    func testAProcessHasEndedWhenGoneOrAZombie() throws {
        XCTAssertFalse(NFTablesGuard.processEnded(getpid()))
        var child: pid_t = 0
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { argv.forEach { free($0) } }
        XCTAssertEqual(posix_spawn(&child, "/bin/true", nil, nil, &argv, environ), 0)
        // Not reaped yet: a zombie once it has exited (bounded wait).
        var zombie = false
        for _ in 0..<500 where !zombie {
            zombie = NFTablesGuard.processEnded(child)
            if !zombie { usleep(10_000) }
        }
        XCTAssertTrue(zombie, "the exited child was not seen as ended")
        var status: Int32 = 0
        XCTAssertEqual(waitpid(child, &status, 0), child)
        XCTAssertTrue(NFTablesGuard.processEnded(child)) // reaped: gone
    }
}
