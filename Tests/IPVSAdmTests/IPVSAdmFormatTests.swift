import Testing
@testable import IPVSAdm
import LVSTestSupport
import LVSModel

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

private func dest(_ a: String, _ port: UInt16, weight: Int32 = 2, active: UInt32 = 3, inact: UInt32 = 12,
                  method: ForwardMethod = .directRoute) -> DestinationSnapshot {
    DestinationSnapshot(options: DestinationOptions(address: ip(a), port: port, method: method, weight: weight),
                        activeConns: active, inactConns: inact)
}

private func tcp(_ a: String, _ port: UInt16) -> ServiceKey { ServiceKey(proto: .tcp, address: ip(a), port: port) }

private func lines(_ l: [String]) -> String { l.map { $0 + "\n" }.joined() }

/// The table behind the §2.2 sample, in a scrambled kernel order (the CLI sorts it).
func sampleTable() -> TableSnapshot {
    var services: [ServiceSnapshot] = []
    services.append(ServiceSnapshot(key: ServiceKey(fwmark: 1, ipv6: false), options: ServiceOptions(scheduler: "wlc"),
                                    destinations: [dest("10.0.0.12", 0)]))
    services.append(ServiceSnapshot(key: ServiceKey(proto: .udp, address: ip("10.0.0.100"), port: 53),
                                    options: ServiceOptions(scheduler: "rr", flags: [.onePacket]),
                                    destinations: [dest("10.0.0.12", 53)]))
    services.append(ServiceSnapshot(key: tcp("10.0.0.100", 8080),
                                    options: ServiceOptions(scheduler: "wrr", flags: [.persistent], timeout: 300),
                                    destinations: [dest("10.0.0.12", 8080)]))
    services.append(ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions(scheduler: "wlc"),
                                    destinations: [dest("10.0.0.12", 80), dest("10.0.0.11", 80, weight: 1, active: 0, inact: 0)]))
    services.append(ServiceSnapshot(key: tcp("200.0.0.1", 80), options: ServiceOptions(scheduler: "rr"),
                                    destinations: [dest("10.0.0.12", 80)]))
    services.append(ServiceSnapshot(key: tcp("10.0.0.100", 443),
                                    options: ServiceOptions(scheduler: "sh", flags: [.persistent, .sched1, .sched2],
                                                            timeout: 360, netmask: 0xFFFF_FF00),
                                    destinations: [dest("10.0.0.12", 443)]))
    return TableSnapshot(services: services)
}

@Suite struct IPVSAdmFormatTests {
    @Test func defaultListingSample() {
        let fake = FakeIPVS()
        fake.table = sampleTable()
        let r = adm("-Ln", fake)
        #expect(r.code == 0 && r.err == "")
        #expect(r.out == lines([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  200.0.0.1:80 rr",
            "  -> 10.0.0.12:80                 Route   2      3          12        ",
            "TCP  10.0.0.100:80 wlc",
            "  -> 10.0.0.11:80                 Route   1      0          0         ",
            "  -> 10.0.0.12:80                 Route   2      3          12        ",
            "TCP  10.0.0.100:443 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0",
            "  -> 10.0.0.12:443                Route   2      3          12        ",
            "TCP  10.0.0.100:8080 wrr persistent 300",
            "  -> 10.0.0.12:8080               Route   2      3          12        ",
            "UDP  10.0.0.100:53 rr ops",
            "  -> 10.0.0.12:53                 Route   2      3          12        ",
            "FWM  1 wlc",
            "  -> 10.0.0.12:0                  Route   2      3          12        ",
        ]))
        // `-L -n`, `--list --numeric`, `-l -n` and `-Ln --sort` are the same listing.
        #expect(adm("-L -n", fake).out == r.out)
        #expect(adm("--list --numeric", fake).out == r.out)
        #expect(adm("-ln --sort", fake).out == r.out)
    }

    @Test func headerSizeAndEmptyTable() {
        let fake = FakeIPVS()
        fake.table = TableSnapshot(connectionTableSize: 1048576)
        #expect(adm("-Ln", fake).out == lines([
            "IP Virtual Server version 1.2.1 (size=1048576)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
        ]))
        // No arguments at all = `-L` without -n.
        #expect(adm("", fake).out == adm("-L", fake).out)
    }

    @Test func nosortKeepsKernelOrder() {
        let fake = FakeIPVS()
        fake.table = sampleTable()
        let out = adm("-Ln --nosort", fake).out.split(separator: "\n").map(String.init)
        #expect(out[3] == "FWM  1 wlc")
        #expect(out[5] == "UDP  10.0.0.100:53 rr ops")
        #expect(out[9] == "TCP  10.0.0.100:80 wlc")
        // Destinations in list order (newest first).
        #expect(out[10] == "  -> 10.0.0.12:80                 Route   2      3          12        ")
        #expect(out[11] == "  -> 10.0.0.11:80                 Route   1      0          0         ")
    }

    @Test func wrappedComparisonQuirk() {
        let a = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions())
        let b = ServiceSnapshot(key: tcp("200.0.0.1", 80), options: ServiceOptions())
        let c = ServiceSnapshot(key: tcp("100.0.0.1", 80), options: ServiceOptions())
        #expect(IPVSAdmFormatter.compareServices(b, a) < 0)
        #expect(IPVSAdmFormatter.compareServices(a, c) < 0)
        let big = ServiceSnapshot(key: ServiceKey(fwmark: 3_000_000_000, ipv6: false), options: ServiceOptions())
        let small = ServiceSnapshot(key: ServiceKey(fwmark: 5, ipv6: false), options: ServiceOptions())
        // Marks >= 2^31 wrap: before non-fwmark services, and printed negative.
        #expect(IPVSAdmFormatter.compareServices(big, a) < 0)
        #expect(IPVSAdmFormatter.compareServices(small, a) > 0)
        let fmt = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        let out = fmt.listAll(TableSnapshot(services: [small, a, big]), format: [.numeric])
        #expect(out.split(separator: "\n")[3] == "FWM  -1294967296 wlc")
        #expect(out.split(separator: "\n")[4] == "TCP  10.0.0.100:80 wlc")
        #expect(out.split(separator: "\n")[5] == "FWM  5 wlc")
        // IPv6 before IPv4 is impossible (af 10 > 2); IPv4 first.
        let v6 = ServiceSnapshot(key: tcp("2001:db8::1", 80), options: ServiceOptions())
        #expect(IPVSAdmFormatter.compareServices(a, v6) < 0)
        // Destinations: same quirk, then port.
        let d1 = dest("10.0.0.1", 80), d2 = dest("200.0.0.1", 80), d3 = dest("10.0.0.1", 79)
        let sorted = IPVSAdmFormatter.mergeSort([d1, d2, d3], by: IPVSAdmFormatter.compareDestinations)
        #expect(sorted.map { "\($0.options.address):\($0.options.port)" } == ["200.0.0.1:80", "10.0.0.1:79", "10.0.0.1:80"])
    }

    @Test func ipv6Listing() {
        let svc = ServiceSnapshot(key: tcp("2001:db8::100", 80),
                                  options: ServiceOptions(scheduler: "rr", flags: [.persistent], timeout: 360, netmask: 64),
                                  destinations: [dest("2001:db8::11", 80, weight: 1, active: 0, inact: 0)])
        let fmt = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        #expect(fmt.serviceEntry(svc, format: [.numeric]) == lines([
            "TCP  [2001:db8::100]:80 rr persistent 360 mask 64",
            "  -> [2001:db8::11]:80            Route   1      0          0         ",
        ]))
        let f6 = ServiceSnapshot(key: ServiceKey(fwmark: 7, ipv6: true),
                                 options: ServiceOptions(scheduler: "wlc", flags: [.persistent], timeout: 100, netmask: 128,
                                                         persistenceEngine: "sip"))
        #expect(fmt.serviceEntry(f6, format: [.numeric]) == "FWM  7 IPv6 wlc persistent 100 pe sip\n")
        #expect(fmt.serviceEntry(f6, format: [.numeric, .rule]) == "-A -f 7 -6 -s wlc -p 100 --pe sip\n")
        let v6save = fmt.serviceEntry(svc, format: [.numeric, .rule])
        #expect(v6save == lines(["-A -t [2001:db8::100]:80 -s rr -p 360 -M 64",
                                 "-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 1"]))
    }

    @Test func statsSample() {
        var svc = ServiceSnapshot(key: tcp("200.0.0.1", 80), options: ServiceOptions(scheduler: "rr"))
        svc.stats = StatsSnapshot(conns: 71045, inPackets: 558845, outPackets: 0, inBytes: 180_179_350_000, outBytes: 123_456_789_012)
        var d = dest("10.0.0.12", 80)
        d.stats = StatsSnapshot(conns: 14209, inPackets: 111769, outPackets: 0, inBytes: 7_207_174_000, outBytes: 123_456_789_012)
        svc.destinations = [d]
        var fw = ServiceSnapshot(key: ServiceKey(fwmark: 1, ipv6: false), options: ServiceOptions())
        fw.stats = StatsSnapshot(conns: 56836, inPackets: 447076, outPackets: 0, inBytes: 115_000_000_000, outBytes: 123_456_789_012)
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: [fw, svc])
        let r = adm("-L -n --stats", fake)
        #expect(r.out == lines([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
            "  -> RemoteAddress:Port",
            "TCP  200.0.0.1:80                    71045   558845        0     180G     123G",
            "  -> 10.0.0.12:80                    14209   111769        0    7207M     123G",
            "FWM  1                               56836   447076        0     115G     123G",
        ]))
        let exact = adm("-L -n --stats --exact", fake).out.split(separator: "\n").map(String.init)
        #expect(exact[3] == "TCP  200.0.0.1:80                    71045   558845        0 180179350000 123456789012")
        #expect(adm("-Ln --stats -X", fake).out == adm("-L -n --stats --exact", fake).out)
        // Stats take precedence over every other view.
        #expect(adm("-Ln --rate --stats --thresholds", fake).out == r.out)
    }

    @Test func rateSample() {
        var svc = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions())
        let rates = RateSnapshot(cps: 12, inPPS: 96, outPPS: 0, inBPS: 61440, outBPS: 0)
        svc.rates = rates
        var d = dest("10.0.0.11", 80)
        d.rates = rates
        svc.destinations = [d]
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: [svc])
        #expect(adm("-Ln --rate", fake).out == lines([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS",
            "  -> RemoteAddress:Port",
            "TCP  10.0.0.100:80                      12       96        0    61440        0",
            "  -> 10.0.0.11:80                       12       96        0    61440        0",
        ]))
        // Destination cps/pps are raw (%8llu), never scaled; bps go through print_largenum.
        svc.destinations[0].rates = RateSnapshot(cps: 123_456_789, inPPS: 5, outPPS: 0, inBPS: 2_000_000_000, outBPS: 0)
        let fmt = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        #expect(fmt.serviceEntry(svc, format: [.numeric, .rate]).split(separator: "\n")[1]
                == "  -> 10.0.0.11:80                 123456789        5        0    2000M        0")
    }

    @Test func largeNumbers() {
        let cases: [(UInt64, String)] = [
            (0, "        0"), (99_999_999, " 99999999"), (100_000_000, "  100000K"), (999_999_999, "  999999K"),
            (1_000_000_000, "    1000M"), (99_999_999_999, "   99999M"), (100_000_000_000, "     100G"),
            (99_999_999_999_999, "   99999G"), (100_000_000_000_000, "     100T"),
            (UInt64.max, "18446744T"),
        ]
        for (n, text) in cases { #expect(IPVSAdmFormatter.largeNumber(n, exact: false) == text) }
        #expect(IPVSAdmFormatter.largeNumber(5, exact: true) == "        5")
        #expect(IPVSAdmFormatter.largeNumber(12_345_678, exact: true) == " 12345678")
        #expect(IPVSAdmFormatter.largeNumber(123_456_789, exact: true) == " 123456789")
        #expect(IPVSAdmFormatter.largeNumber(123_456_789_012, exact: true) == " 123456789012")
    }

    @Test func thresholdsSample() {
        var svc = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions())
        var d12 = dest("10.0.0.12", 80)
        d12.options.upperThreshold = 1000
        d12.options.lowerThreshold = 750
        svc.destinations = [d12, dest("10.0.0.11", 80, weight: 1, active: 0, inact: 0)]
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: [svc])
        let r = adm("-L -n -t 10.0.0.100:80 --thresholds", fake)
        #expect(r.code == 0)
        #expect(r.out == lines([
            "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  10.0.0.100:80 wlc",
            "  -> 10.0.0.11:80                 0          0          0          0         ",
            "  -> 10.0.0.12:80                 1000       750        3          12        ",
        ]))
    }

    @Test func persistentConnSample() {
        var svc = ServiceSnapshot(key: tcp("10.0.0.100", 8080),
                                  options: ServiceOptions(scheduler: "wrr", flags: [.persistent], timeout: 300))
        var d = dest("10.0.0.12", 8080)
        d.persistConns = 5
        svc.destinations = [d]
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: [svc])
        #expect(adm("-Ln -t 10.0.0.100:8080 --persistent-conn", fake).out == lines([
            "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ",
            "  -> RemoteAddress:Port",
            "TCP  10.0.0.100:8080 wrr persistent 300",
            "  -> 10.0.0.12:8080               2         5           3          12        ",
        ]))
    }

    @Test func singleServiceListing() {
        let fake = FakeIPVS()
        fake.table = sampleTable()
        #expect(adm("-L -n -t 10.0.0.100:80", fake).out == lines([
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
            "TCP  10.0.0.100:80 wlc",
            "  -> 10.0.0.11:80                 Route   1      0          0         ",
            "  -> 10.0.0.12:80                 Route   2      3          12        ",
        ]))
        #expect(adm("-L -n -f 1", fake).out.hasSuffix("FWM  1 wlc\n  -> 10.0.0.12:0                  Route   2      3          12        \n"))
        #expect(adm("-Ln -u 10.0.0.100:53", fake).out.contains("UDP  10.0.0.100:53 rr ops\n"))
        let missing = adm("-L -n -f 1 -6", fake)
        #expect(missing.code == 1 && missing.err == "No such service\n")
    }

    @Test func tunnelInfo() {
        var svc = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions())
        var gue = dest("10.0.0.13", 80, method: .tunnel)
        gue.options.tunnelType = .gue
        gue.options.tunnelPort = 6080
        gue.options.tunnelFlags = 1
        var gre = dest("10.0.0.14", 80, method: .tunnel)
        gre.options.tunnelType = .gre
        gre.options.tunnelFlags = 2
        let ipip = dest("10.0.0.15", 80, method: .tunnel)
        let nat = dest("10.0.0.16", 8080, method: .masquerade)
        svc.destinations = [nat, ipip, gre, gue, dest("10.0.0.12", 80)]
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: [svc])
        #expect(adm("-Ln --tun-info", fake).out == lines([
            "IP Virtual Server version 1.2.1 (size=4096)",
            "Prot LocalAddress:Port Scheduler Flags",
            "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn",
            "TCP  10.0.0.100:80 wlc",
            "  -> 10.0.0.12:80                 Route   n/a           2      3          12        ",
            "  -> 10.0.0.13:80                 Tunnel  gue:6080:+c   2      3          12        ",
            "  -> 10.0.0.14:80                 Tunnel  gre:r+c       2      3          12        ",
            "  -> 10.0.0.15:80                 Tunnel  ipip          2      3          12        ",
            "  -> 10.0.0.16:8080               Masq    n/a           2      3          12        ",
        ]))
        #expect(adm("-Sn", fake).out == lines([
            "-A -t 10.0.0.100:80 -s wlc",
            "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 2",
            "-a -t 10.0.0.100:80 -r 10.0.0.13:80 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum",
            "-a -t 10.0.0.100:80 -r 10.0.0.14:80 -i -w 2 --tun-type gre --tun-remcsum",
            "-a -t 10.0.0.100:80 -r 10.0.0.15:80 -i -w 2 --tun-type ipip",
            "-a -t 10.0.0.100:80 -r 10.0.0.16:8080 -m -w 2",
        ]))
    }

    static func sampleConnections() -> [ConnectionSnapshot] {
        [
            ConnectionSnapshot(protocolName: "TCP", clientAddress: ip("192.168.1.50"), clientPort: 51234,
                               virtualAddress: ip("10.0.0.100"), virtualPort: 80, destinationAddress: ip("10.0.0.11"),
                               destinationPort: 80, state: "ESTABLISHED", expiresSeconds: 899),
            ConnectionSnapshot(protocolName: "TCP", clientAddress: ip("192.168.1.50"), clientPort: 51236,
                               virtualAddress: ip("10.0.0.100"), virtualPort: 80, destinationAddress: ip("10.0.0.12"),
                               destinationPort: 80, state: "FIN_WAIT", expiresSeconds: 107),
            ConnectionSnapshot(protocolName: "UDP", clientAddress: ip("192.168.1.50"), clientPort: 40000,
                               virtualAddress: ip("10.0.0.100"), virtualPort: 53, destinationAddress: ip("10.0.0.11"),
                               destinationPort: 53, state: "UDP", expiresSeconds: 287),
            ConnectionSnapshot(protocolName: "TCP", clientAddress: ip("192.168.1.0"), clientPort: 0,
                               virtualAddress: ip("10.0.0.100"), virtualPort: 443, destinationAddress: ip("10.0.0.11"),
                               destinationPort: 443, state: "ASSURED", expiresSeconds: 359, isTemplate: true),
            ConnectionSnapshot(protocolName: "IP", clientAddress: ip("192.168.1.50"), clientPort: 0,
                               virtualAddress: ip("0.0.0.1"), virtualPort: 0, destinationAddress: ip("10.0.0.11"),
                               destinationPort: 0, state: "NONE", expiresSeconds: 299, isTemplate: true),
            ConnectionSnapshot(protocolName: "TCP", clientAddress: ip("2001:db8::50"), clientPort: 51234,
                               virtualAddress: ip("2001:db8::100"), virtualPort: 80, destinationAddress: ip("2001:db8::11"),
                               destinationPort: 80, state: "SYN_RECV", expiresSeconds: 59),
        ]
    }

    @Test func connectionSample() {
        let fake = FakeIPVS()
        fake.connections = Self.sampleConnections()
        let expected = lines([
            "IPVS connection entries",
            "pro expire state       source             virtual            destination",
            "TCP 14:59  ESTABLISHED 192.168.1.50:51234 10.0.0.100:80      10.0.0.11:80",
            "TCP 01:47  FIN_WAIT    192.168.1.50:51236 10.0.0.100:80      10.0.0.12:80",
            "UDP 04:47  UDP         192.168.1.50:40000 10.0.0.100:53      10.0.0.11:53",
            "TCP 05:59  ASSURED     192.168.1.0:0      10.0.0.100:443     10.0.0.11:443",
            "IP  04:59  NONE        192.168.1.50:0     0.0.0.1:0          10.0.0.11:0",
            "TCP 00:59  SYN_RECV    [2001:db8::50]:51234 [2001:db8::100]:80 [2001:db8::11]:80",
        ])
        #expect(adm("-Lnc", fake).out == expected)
        #expect(adm("-L -c -n", fake).out == expected)
        // -c wins over a listing view that does not conflict; minutes are not capped.
        fake.connections = [ConnectionSnapshot(protocolName: "TCP", clientAddress: ip("1.2.3.4"), clientPort: 1,
                                               virtualAddress: ip("10.0.0.100"), virtualPort: 80,
                                               destinationAddress: ip("10.0.0.11"), destinationPort: 80,
                                               state: "ESTABLISHED", expiresSeconds: 7265)]
        #expect(adm("-Lnc --nosort", fake).out.hasSuffix("TCP 121:05 ESTABLISHED 1.2.3.4:1          10.0.0.100:80      10.0.0.11:80\n"))
        // Names without -n.
        #expect(adm("-Lc", fake).out.hasSuffix("TCP 121:05 ESTABLISHED 1.2.3.4:1          10.0.0.100:http    10.0.0.11:http\n"))
    }

    @Test func connectionPersistentTitle() {
        let fake = FakeIPVS()
        fake.connections = Array(Self.sampleConnections().prefix(1))
        #expect(adm("-Lnc --persistent-conn", fake).out == lines([
            "IPVS connection entries",
            "pro expire state       source             virtual            destination        pe name          pe_data",
            "TCP 14:59  ESTABLISHED 192.168.1.50:51234 10.0.0.100:80      10.0.0.11:80",
        ]))
    }

    @Test func timeoutsAndDaemons() {
        let fake = FakeIPVS()
        #expect(adm("-L --timeout", fake).out == "Timeout (tcp tcpfin udp): 900 120 300\n")
        #expect(adm("--set 100 0 50", fake).code == 0)
        #expect(adm("-L --timeout -n", fake).out == "Timeout (tcp tcpfin udp): 100 120 50\n")
        #expect(adm("-L --daemon", fake).out == "")
        fake.table.daemons = [
            SyncDaemonSnapshot(role: "backup", interface: "eth1", syncID: 9, maxLength: 0, group: "", port: 0, ttl: 0),
            SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 0, maxLength: 1472, group: "224.0.0.81", port: 8848, ttl: 1),
        ]
        #expect(adm("-L --daemon", fake).out == lines([
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)",
            "backup sync daemon (mcast=eth1, syncid=9)",
        ]))
    }

    @Test func saveSample() {
        var services: [ServiceSnapshot] = []
        services.append(ServiceSnapshot(key: ServiceKey(fwmark: 1, ipv6: false), options: ServiceOptions(scheduler: "wlc"),
                                        destinations: [dest("10.0.0.12", 0)]))
        services.append(ServiceSnapshot(key: ServiceKey(proto: .udp, address: ip("10.0.0.100"), port: 53),
                                        options: ServiceOptions(scheduler: "rr", flags: [.onePacket])))
        services.append(ServiceSnapshot(key: tcp("10.0.0.100", 443),
                                        options: ServiceOptions(scheduler: "sh", flags: [.persistent, .sched1, .sched2],
                                                                timeout: 360, netmask: 0xFFFF_FF00)))
        var web = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions(scheduler: "wlc"),
                                  destinations: [dest("10.0.0.12", 80), dest("10.0.0.11", 80, weight: 1)])
        web.destinations[0].options.upperThreshold = 50  // thresholds are not saved
        services.append(web)
        let fake = FakeIPVS()
        fake.table = TableSnapshot(services: services)
        let r = adm("-S -n", fake)
        #expect(r.code == 0)
        #expect(r.out == lines([
            "-A -t 10.0.0.100:80 -s wlc",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
            "-a -t 10.0.0.100:80 -r 10.0.0.12:80 -g -w 2",
            "-A -t 10.0.0.100:443 -s sh -p 360 -M 255.255.255.0 -b sh-fallback,sh-port",
            "-A -u 10.0.0.100:53 -s rr -o",
            "-A -f 1 -s wlc",
            "-a -f 1 -r 10.0.0.12:0 -g -w 2",
        ]))
        #expect(adm("--save --numeric", fake).out == r.out)
        let named = adm("-S", fake).out.split(separator: "\n").map(String.init)
        #expect(named[0] == "-A -t 10.0.0.100:http -s wlc")
        #expect(named[1] == "-a -t 10.0.0.100:http -r 10.0.0.11:http -g -w 1")
    }

    @Test func namesWithoutNumeric() {
        let fake = FakeIPVS()
        fake.table = sampleTable()
        var resolver = FakeResolver()
        resolver.reverseHosts[ip("10.0.0.11")] = "web1.example"
        let out = adm("-L", fake, resolver: resolver).out.split(separator: "\n").map(String.init)
        #expect(out[5] == "TCP  10.0.0.100:http wlc")
        #expect(out[6] == "  -> web1.example:http            Route   1      0          0         ")
        #expect(out[8] == "TCP  10.0.0.100:https sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0")
        #expect(out[12] == "UDP  10.0.0.100:domain rr ops")
    }

    @Test func truncationOfLongNames() {
        var resolver = FakeResolver()
        resolver.reverseHosts[ip("10.0.0.100")] = "a-rather-long-virtual-host-name.example.com"
        resolver.reverseHosts[ip("10.0.0.11")] = "a-rather-long-real-server-name.example.com"
        let svc = ServiceSnapshot(key: tcp("10.0.0.100", 80), options: ServiceOptions(scheduler: "rr"),
                                  destinations: [dest("10.0.0.11", 80, weight: 1, active: 0, inact: 0)])
        let fmt = IPVSAdmFormatter(resolver: resolver)
        #expect(fmt.serviceEntry(svc, format: []) == lines([
            "TCP  a-rather-long-virtual-host-n rr",
            "  -> a-rather-long-real-server-na Route   1      0          0         ",
        ]))
        var stats = svc
        stats.destinations = []
        #expect(fmt.serviceEntry(stats, format: [.stats]) == "TCP  a-rather-long-virtual-host-n        0        0        0        0        0\n")
        // Save format is never truncated.
        #expect(fmt.serviceEntry(stats, format: [.rule]) == "-A -t a-rather-long-virtual-host-name.example.com:http -s rr\n")
        // IPv6 names are never truncated.
        let v6 = ServiceSnapshot(key: tcp("2001:db8:aaaa:bbbb:cccc:dddd:eeee:1", 65535), options: ServiceOptions(scheduler: "rr"),
                                 destinations: [dest("2001:db8:aaaa:bbbb:cccc:dddd:eeee:2", 65535, weight: 1, active: 0, inact: 0)])
        #expect(IPVSAdmFormatter(resolver: NumericOnlyResolver()).serviceEntry(v6, format: [.numeric]) == lines([
            "TCP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:65535 rr",
            "  -> [2001:db8:aaaa:bbbb:cccc:dddd:eeee:2]:65535 Route   1      0          0         ",
        ]))
    }

    @Test func schedulerFlagNames() {
        let fmt = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        let mh = ServiceSnapshot(key: tcp("10.0.0.1", 80), options: ServiceOptions(scheduler: "mh", flags: [.sched2, .sched3]))
        #expect(fmt.serviceEntry(mh, format: [.numeric]) == "TCP  10.0.0.1:80 mh (mh-port,flag-3)\n")
        #expect(fmt.serviceEntry(mh, format: [.numeric, .rule]) == "-A -t 10.0.0.1:80 -s mh -b mh-port,flag-3\n")
        let rr = ServiceSnapshot(key: tcp("10.0.0.1", 80), options: ServiceOptions(scheduler: "rr", flags: [.sched1, .sched3]))
        #expect(fmt.serviceEntry(rr, format: [.numeric]) == "TCP  10.0.0.1:80 rr (flag-1,flag-3)\n")
        // --pe is saved even without persistence; in the listing it shows only inside the persistent part.
        let pe = ServiceSnapshot(key: ServiceKey(proto: .udp, address: ip("10.0.0.1"), port: 5060),
                                 options: ServiceOptions(scheduler: "rr", persistenceEngine: "sip"))
        #expect(fmt.serviceEntry(pe, format: [.numeric]) == "UDP  10.0.0.1:5060 rr\n")
        #expect(fmt.serviceEntry(pe, format: [.numeric, .rule]) == "-A -u 10.0.0.1:5060 -s rr --pe sip\n")
        let sctp = ServiceSnapshot(key: ServiceKey(proto: .sctp, address: ip("10.0.0.1"), port: 9), options: ServiceOptions())
        #expect(fmt.serviceEntry(sctp, format: [.numeric]) == "SCTP 10.0.0.1:9 wlc\n")
        #expect(fmt.serviceEntry(sctp, format: [.numeric, .rule]) == "-A --sctp-service 10.0.0.1:9 -s wlc\n")
    }
}
