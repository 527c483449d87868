import Foundation
import Testing
@testable import LVSRealServer
import LVSModel

/// A fake `ip` that keeps the addresses of lo in memory.
final class FakeIP {
    var addresses: [String] = []
    var calls: [[String]] = []
    var failAdd = false

    func run(_ args: [String]) -> (status: Int32, output: String) {
        calls.append(args)
        switch Array(args.prefix(2)) {
        case ["-o", "addr"]:
            var out = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
            for a in addresses {
                out += "1: lo    \(a.contains(":") ? "inet6" : "inet") \(a) scope global lo\\       valid_lft forever preferred_lft forever\n"
            }
            return (0, out)
        case ["addr", "add"]:
            if failAdd { return (2, "RTNETLINK answers: Operation not permitted\n") }
            if addresses.contains(args[2]) { return (2, "RTNETLINK answers: File exists\n") }
            addresses.append(args[2])
            return (0, "")
        case ["addr", "del"]:
            addresses.removeAll { $0 == args[2] }
            return (0, "")
        default:
            return (1, "unexpected")
        }
    }
}

/// A temporary fake /proc/sys/net/ipv4/conf tree plus state and route files.
struct FakeHost {
    let root: String
    var sysctl: String { root + "/conf" }
    var state: String { root + "/run" }
    var route: String { root + "/route" }
    let ip = FakeIP()

    init(interfaces: [String] = ["eth0"], defaultRoute: String? = "eth0") {
        root = NSTemporaryDirectory() + "rs-test-\(UUID().uuidString)"
        let fm = FileManager.default
        for conf in ["all", "default", "lo"] + interfaces {
            try! fm.createDirectory(atPath: "\(root)/conf/\(conf)", withIntermediateDirectories: true)
            try! "0\n".write(toFile: "\(root)/conf/\(conf)/arp_ignore", atomically: false, encoding: .utf8)
            try! "0\n".write(toFile: "\(root)/conf/\(conf)/arp_announce", atomically: false, encoding: .utf8)
        }
        var table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        for i in interfaces {
            table += "\(i)\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        }
        if let d = defaultRoute { table += "\(d)\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" }
        try! table.write(toFile: "\(root)/route", atomically: false, encoding: .utf8)
    }

    var setup: RealServerSetup {
        let ip = self.ip
        return RealServerSetup(sysctlRoot: sysctl, stateDirectory: state, routeTablePath: route, runIP: { ip.run($0) })
    }

    func value(_ conf: String, _ key: String) -> String {
        (try? String(contentsOfFile: "\(sysctl)/\(conf)/\(key)", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
    }

    func set(_ conf: String, _ key: String, _ v: String) {
        try! "\(v)\n".write(toFile: "\(sysctl)/\(conf)/\(key)", atomically: false, encoding: .utf8)
    }

    /// Exit code and captured output of one `lvsadm realserver` run.
    struct SetupResult {
        var code: Int32
        var out: String
        var err: String
    }

    func run(_ line: String) -> SetupResult {
        var out = "", err = ""
        let code = setup.run(line.split(separator: " ").map(String.init), out: { out += $0 }, err: { err += $0 })
        return SetupResult(code: code, out: out, err: err)
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct RealServerSetupTests {
    @Test func upStatusDownCycle() throws {
        let host = FakeHost(interfaces: ["eth0", "eth1"], defaultRoute: "eth1")
        defer { host.cleanup() }
        host.set("all", "arp_announce", "1")
        let before = host.run("status --vip 10.0.0.100")
        #expect(before.code == 1)
        #expect(before.out.contains("address 10.0.0.100/32 on lo: missing\n"))
        #expect(before.out.contains("eth1.arp_ignore=1: missing (is 0)\n"))

        let up = host.run("up --vip 10.0.0.100")
        #expect(up.code == 0 && up.err == "")
        #expect(host.ip.addresses == ["10.0.0.100/32"])
        for conf in ["all", "lo", "eth1"] {
            #expect(host.value(conf, "arp_ignore") == "1")
            #expect(host.value(conf, "arp_announce") == "2")
        }
        // eth0 is not the default-route interface: untouched.
        #expect(host.value("eth0", "arp_ignore") == "0")
        let saved = try String(contentsOfFile: host.state + "/realserver-10.0.0.100.state", encoding: .utf8)
        #expect(saved.contains("all.arp_announce=1\n") && saved.contains("eth1.arp_ignore=0\n"))

        let status = host.run("status --vip 10.0.0.100")
        #expect(status.code == 0)
        #expect(status.out == """
            address 10.0.0.100/32 on lo: ok
            all.arp_ignore=1: ok
            all.arp_announce=2: ok
            lo.arp_ignore=1: ok
            lo.arp_announce=2: ok
            eth1.arp_ignore=1: ok
            eth1.arp_announce=2: ok

            """)

        // Idempotent: no second `ip addr add`, the saved state keeps the original values.
        let again = host.run("up --vip 10.0.0.100")
        #expect(again.code == 0)
        #expect(host.ip.calls.filter { $0.starts(with: ["addr", "add"]) }.count == 1)
        #expect(try String(contentsOfFile: host.state + "/realserver-10.0.0.100.state", encoding: .utf8) == saved)

        let down = host.run("down --vip 10.0.0.100")
        #expect(down.code == 0)
        #expect(host.ip.addresses.isEmpty)
        #expect(host.value("all", "arp_announce") == "1")
        #expect(host.value("all", "arp_ignore") == "0")
        #expect(host.value("eth1", "arp_announce") == "0")
        #expect(!FileManager.default.fileExists(atPath: host.state + "/realserver-10.0.0.100.state"))
        #expect(host.run("status --vip 10.0.0.100").code == 1)
    }

    @Test func explicitDeviceAndIPv6() {
        let host = FakeHost(interfaces: ["eth0", "bond0"], defaultRoute: nil)
        defer { host.cleanup() }
        let up = host.run("up --vip=2001:db8::100 --dev=bond0")
        #expect(up.code == 0, "\(up.err)")
        #expect(host.ip.addresses == ["2001:db8::100/128"])
        #expect(host.value("bond0", "arp_ignore") == "1")
        #expect(host.value("eth0", "arp_ignore") == "0")
        #expect(host.run("status --vip 2001:db8::100 --dev bond0").code == 0)
        #expect(host.run("down --vip 2001:db8::100 --dev bond0").code == 0)
        #expect(host.value("bond0", "arp_ignore") == "0")
    }

    @Test func onlyNonLoopbackInterfaceIsTheDefault() {
        let host = FakeHost(interfaces: ["ens3"], defaultRoute: nil)
        defer { host.cleanup() }
        #expect(host.run("up --vip 10.0.0.5").code == 0)
        #expect(host.value("ens3", "arp_announce") == "2")
    }

    @Test func sharedSettingsStayWhileAnotherVIPIsUp() {
        let host = FakeHost()
        defer { host.cleanup() }
        #expect(host.run("up --vip 10.0.0.1").code == 0)
        #expect(host.run("up --vip 10.0.0.2").code == 0)
        #expect(host.run("down --vip 10.0.0.1").code == 0)
        #expect(host.value("all", "arp_ignore") == "1")
        #expect(host.ip.addresses == ["10.0.0.2/32"])
        #expect(host.run("down --vip 10.0.0.2").code == 0)
        #expect(host.value("all", "arp_ignore") == "0")
    }

    @Test func errorsNameTheBadInput() {
        let host = FakeHost(interfaces: ["eth0", "eth1"], defaultRoute: nil)
        defer { host.cleanup() }
        let bad = host.run("up --vip 10.0.0.300")
        #expect(bad.code == 2 && bad.err.contains("'10.0.0.300'"))
        let missing = host.run("up")
        #expect(missing.code == 2 && missing.err.contains("missing --vip"))
        let action = host.run("sideways --vip 10.0.0.1")
        #expect(action.code == 2 && action.err.contains("'sideways'"))
        let opt = host.run("up --vip 10.0.0.1 --bogus")
        #expect(opt.code == 2 && opt.err.contains("'--bogus'"))
        let dev = host.run("up --vip 10.0.0.1 --dev eth9")
        #expect(dev.code == 2 && dev.err.contains("'eth9'"))
        // Two candidate interfaces and no default route: must be told.
        let ambiguous = host.run("up --vip 10.0.0.1")
        #expect(ambiguous.code == 2 && ambiguous.err.contains("--dev"))
        #expect(host.ip.addresses.isEmpty)
        host.ip.failAdd = true
        let denied = host.run("up --vip 10.0.0.1 --dev eth0")
        #expect(denied.code == 1 && denied.err.contains("Operation not permitted"))
        let novalue = host.run("status --vip")
        #expect(novalue.code == 2 && novalue.err.contains("--vip"))
        #expect(bad.err.hasPrefix("lvsadm realserver: "))
    }
}
