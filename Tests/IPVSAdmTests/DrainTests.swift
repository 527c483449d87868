import Testing
@testable import IPVSAdm
import LVSModel
import LVSTestSupport

/// One drain run's exit code and output.
private struct DrainResult {
    var code: Int32
    var out: String
    var err: String
}

/// `lvsadm drain` against the in-memory table, on a fake clock: each sleep advances the clock
/// and then runs `tick` (the connections that end meanwhile).
private final class DrainLab {
    let fake = FakeIPVS()
    var clock = 0.0
    var sleeps: [Double] = []
    /// How many requests had been made when each sleep began.
    var requestsAtSleep: [Int] = []
    var tick: (FakeIPVS) -> Void = { _ in }
    var interruptAfterSleeps: Int?
    var terminal = false
    let vip = "10.0.0.100:80"

    init(active: UInt32, inactive: UInt32 = 0, udp: Bool = false) {
        let sel = udp ? "-u" : "-t"
        #expect(adm("-A \(sel) \(vip) -s wrr", fake).code == 0)
        #expect(adm("-a \(sel) \(vip) -r 10.0.0.11:80 -m -w 3 -x 100 -y 10", fake).code == 0)
        #expect(adm("-a \(sel) \(vip) -r 10.0.0.12:80 -m -w 1", fake).code == 0)
        setCounts(active: active, inactive: inactive)
        fake.requests = []
    }

    func drained() -> DestinationSnapshot? {
        fake.table.services[0].destinations.first { $0.options.address.description == "10.0.0.11" }
    }

    func setCounts(active: UInt32, inactive: UInt32 = 0) {
        var t = fake.table
        for j in t.services[0].destinations.indices where t.services[0].destinations[j].options.address.description == "10.0.0.11" {
            t.services[0].destinations[j].activeConns = active
            t.services[0].destinations[j].inactConns = inactive
        }
        fake.table = t
    }

    func run(_ line: String) -> DrainResult {
        let cap = Capture(input: [])
        let env = DrainEnvironment(
            now: { self.clock },
            sleep: { s in
                self.sleeps.append(s)
                self.requestsAtSleep.append(self.fake.requests.count)
                self.clock += s
                self.tick(self.fake)
            },
            interruption: {
                guard let n = self.interruptAfterSleeps, self.sleeps.count >= n else { return nil }
                return 2 // SIGINT
            },
            isTerminal: terminal)
        let runner = DrainRunner(backend: fake, io: cap.io, environment: env, resolver: FakeResolver())
        let code = runner.run(line.split(separator: " ").map(String.init))
        return DrainResult(code: code, out: cap.out, err: cap.err)
    }

    /// The requests other than snapshots, in order.
    var changes: [ControlRequest] {
        fake.requests.filter { if case .snapshot = $0 { return false } else { return true } }
    }
}

/// One connection ends per second.
private func oneEndsPerSecond(_ lab: DrainLab) -> (FakeIPVS) -> Void {
    { _ in
        if let d = lab.drained(), d.activeConns > 0 { lab.setCounts(active: d.activeConns - 1, inactive: d.inactConns + 1) }
    }
}

@Suite struct DrainTests {
    @Test func setsWeightZeroFirstKeepingTheOtherOptions() throws {
        let lab = DrainLab(active: 2)
        lab.tick = oneEndsPerSecond(lab)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11:80")
        #expect(r.code == DrainExit.drained, "\(r.err)")
        // The first request is the look at the table, the second the edit: before any wait.
        guard case .editDestination(let key, let d) = lab.fake.requests[1] else {
            Issue.record("second request is not an edit: \(lab.fake.requests)")
            return
        }
        #expect(key.port == 80 && key.proto == .tcp)
        var expected = DestinationOptions(address: IPAddress("10.0.0.11")!, port: 80, method: .masquerade, weight: 0,
                                          upperThreshold: 100, lowerThreshold: 10)
        expected.tunnelType = d.tunnelType
        #expect(d == expected)
        #expect(lab.requestsAtSleep.first == 3) // snapshot, edit, snapshot: then the first wait
        #expect(lab.changes.count == 1) // no delete without --then-delete
        #expect(lab.drained()?.options.weight == 0)
        #expect(lab.drained()?.options.upperThreshold == 100)
        // the other real server is untouched
        #expect(lab.fake.table.services[0].destinations.first { $0.options.address.description == "10.0.0.12" }?.options.weight == 1)
    }

    @Test func waitsWhileActiveThenDeletesOnlyAfter() throws {
        let lab = DrainLab(active: 3)
        lab.tick = oneEndsPerSecond(lab)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == DrainExit.drained, "\(r.err)")
        #expect(lab.sleeps == [1, 1, 1])
        #expect(lab.drained() == nil)
        guard case .deleteDestination(_, let address, let port) = lab.changes.last else {
            Issue.record("last change is not a delete: \(lab.changes)")
            return
        }
        #expect(address.description == "10.0.0.11" && port == 80)
        // The delete came after the last sleep (3 connections, one a second) and a look at the table.
        let deleteIndex = try #require(lab.fake.requests.lastIndex { if case .deleteDestination = $0 { true } else { false } })
        #expect(deleteIndex > lab.requestsAtSleep.last!)
        if case .snapshot = lab.fake.requests[deleteIndex - 1] {} else { Issue.record("no look before the delete") }
        #expect(r.out.hasSuffix("drained after 3.0s (0 active, 3 inactive, 0 persistent); deleted\n"))
    }

    @Test func inactiveConnectionsDoNotHoldATCPDrain() {
        let lab = DrainLab(active: 0, inactive: 7)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == DrainExit.drained)
        #expect(lab.sleeps.isEmpty)
        #expect(lab.drained() == nil)
    }

    @Test func udpWaitsForItsInactiveEntries() {
        let lab = DrainLab(active: 0, inactive: 2, udp: true)
        lab.tick = { _ in
            if let d = lab.drained(), d.inactConns > 0 { lab.setCounts(active: 0, inactive: d.inactConns - 1) }
        }
        let r = lab.run("-u 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == DrainExit.drained)
        #expect(lab.sleeps.count == 2)
        #expect(lab.drained() == nil)
    }

    @Test func timeoutWithoutDeleteLeavesWeightZero() {
        let lab = DrainLab(active: 5)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --timeout 3")
        #expect(r.code == DrainExit.timedOut)
        #expect(lab.sleeps.reduce(0, +) == 3)
        #expect(lab.drained()?.options.weight == 0)
        #expect(lab.changes.count == 1)
        #expect(r.out.contains("timeout after 3.0s with 5 active"))
        #expect(r.out.contains("the weight stays 0"))
    }

    @Test func timeoutWithDeleteDeletesAtTheTimeout() {
        let lab = DrainLab(active: 5)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --timeout 2 --then-delete")
        #expect(r.code == DrainExit.timedOut)
        #expect(lab.clock == 2)
        #expect(lab.drained() == nil)
        #expect(r.out.contains("deleting it all the same"))
    }

    @Test func timeoutZeroLooksOnce() {
        let lab = DrainLab(active: 1)
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --timeout 0")
        #expect(r.code == DrainExit.timedOut)
        #expect(lab.sleeps.isEmpty)
    }

    @Test func interruptLeavesWeightZeroAndSaysSo() {
        let lab = DrainLab(active: 4)
        lab.interruptAfterSleeps = 2
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == 130)
        #expect(lab.drained()?.options.weight == 0)
        #expect(lab.changes.count == 1) // not deleted
        #expect(r.out.contains("interrupted after 2.0s with 4 active"))
        #expect(r.out.contains("the weight stays 0, the real server is not deleted"))
    }

    @Test func progressLinePerSecondOnATerminalOnly() {
        let tty = DrainLab(active: 3)
        tty.terminal = true
        tty.tick = oneEndsPerSecond(tty)
        let a = tty.run("-t 10.0.0.100:80 -r 10.0.0.11")
        let ttyLines = a.out.split(separator: "\n")
        #expect(ttyLines.count == 5) // start, 3 left, 2 left, 1 left, drained
        #expect(ttyLines[1].contains("3 left after 0.0s"))
        #expect(ttyLines[3].contains("1 left after 2.0s"))

        let pipe = DrainLab(active: 3)
        pipe.tick = oneEndsPerSecond(pipe)
        let b = pipe.run("-t 10.0.0.100:80 -r 10.0.0.11")
        let lines = b.out.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0] == "drain 10.0.0.11:80 of TCP 10.0.0.100:80: weight 0 (was 3), waiting for 3 connections (3 active, 0 inactive, 0 persistent), no timeout")
        #expect(lines[1].contains("drained after 3.0s"))
    }

    @Test func missingServiceOrServerAsIpvsadm() {
        let lab = DrainLab(active: 1)
        let noService = lab.run("-t 10.0.0.100:81 -r 10.0.0.11")
        #expect(noService.code == 255)
        #expect(noService.err == "Service not defined\n")
        #expect(adm("-e -t 10.0.0.100:81 -r 10.0.0.11:80", lab.fake).err == noService.err)
        let noServer = lab.run("-t 10.0.0.100:80 -r 10.0.0.13")
        #expect(noServer.code == 255)
        #expect(noServer.err == "No such destination\n")
        #expect(adm("-e -t 10.0.0.100:80 -r 10.0.0.13:80", lab.fake).err == noServer.err)
        #expect(lab.changes.filter { if case .editDestination(_, let d) = $0 { d.weight == 0 } else { false } }.isEmpty)
    }

    @Test func lvsdUnreachableIsExitTwo() {
        let lab = DrainLab(active: 1)
        lab.fake.unreachable = true
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11")
        #expect(r.code == 2)
        #expect(r.err.hasPrefix("lvsadm: cannot reach lvsd"))
    }

    @Test func weightSetAgainByOthersStopsTheDrain() {
        let lab = DrainLab(active: 2)
        lab.tick = { fake in _ = adm("-e -t 10.0.0.100:80 -r 10.0.0.11:80 -m -w 3", fake) }
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == DrainExit.weightChanged)
        #expect(r.err.contains("the weight was set to 3 by someone else"))
        #expect(lab.drained() != nil)
    }

    @Test func serverDeletedMeanwhileEndsTheDrain() {
        let lab = DrainLab(active: 2)
        lab.tick = { fake in _ = adm("-d -t 10.0.0.100:80 -r 10.0.0.11:80", fake) }
        let r = lab.run("-t 10.0.0.100:80 -r 10.0.0.11 --then-delete")
        #expect(r.code == DrainExit.drained)
        #expect(r.out.contains("no longer in the table"))
    }

    @Test func grammar() throws {
        let p = DrainParser(program: "lvsadm", resolver: FakeResolver())
        #expect(try p.parse(["-h"]) == .help)
        #expect(p.help().contains("lvsadm drain -t|-u|--sctp-service service-address -r server-address"))
        guard case .run(let a) = try p.parse(["-t", "10.0.0.100:http", "-r", "web1", "--timeout=30", "--then-delete"]) else {
            Issue.record("no run"); return
        }
        #expect(a.serverText == "10.0.0.11:80") // the service's port when the real server has none
        #expect(a.timeout == 30 && a.thenDelete)
        guard case .run(let f) = try p.parse(["-f", "7", "-6", "-r", "[2001:db8::31]:8080"]) else {
            Issue.record("no run"); return
        }
        #expect(f.service == ServiceKey(fwmark: 7, ipv6: true))
        #expect(f.serverText == "[2001:db8::31]:8080" && f.timeout == nil && !f.thenDelete)
        for bad in [["-r", "10.0.0.11"], ["-t", "10.0.0.100:80"], ["-t", "10.0.0.100:80", "-r", "10.0.0.11", "--timeout", "-1"],
                    ["-t", "10.0.0.100:80", "-r", "10.0.0.11", "-w", "0"], ["-t", "nohost:80", "-r", "10.0.0.11"],
                    ["-t", "10.0.0.100:80", "-u", "10.0.0.100:53", "-r", "10.0.0.11"], ["-t", "10.0.0.100:80", "-r"]] {
            #expect(throws: IPVSAdmFailure.self, "\(bad)") { try p.parse(bad) }
        }
        do {
            _ = try p.parse(["-t", "10.0.0.100:80"])
            Issue.record("no real server accepted")
        } catch {
            #expect(error.exitCode == 2)
            #expect(error.stderr == "lvsadm drain: a real server is needed (-r)\nTry `lvsadm drain -h' for more information.\n")
        }
    }
}
