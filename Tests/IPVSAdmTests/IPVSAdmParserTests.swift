import Testing
import LVSTestSupport
@testable import IPVSAdm
import LVSModel

private func parse(_ line: String, stdin: Bool = false) throws(IPVSAdmFailure) -> IPVSAdmParsed {
    let argv = ["ipvsadm"] + line.split(separator: " ").map(String.init)
    return try IPVSAdmParser(program: "ipvsadm", resolver: FakeResolver()).parse(argv, readingStdin: stdin)
}

private func inv(_ line: String) throws -> IPVSAdmInvocation {
    guard case .run(let i) = try parse(line) else {
        Issue.record("not a run command: \(line)")
        throw IPVSAdmFailure(stderr: "", exitCode: 0)
    }
    return i
}

private func failure(_ line: String, stdin: Bool = false) -> IPVSAdmFailure? {
    do {
        _ = try parse(line, stdin: stdin)
        return nil
    } catch {
        return error
    }
}

@Suite struct IPVSAdmParserTests {
    @Test func combinedShortOptions() throws {
        let a = try inv("-Ln")
        #expect(a.command == .list && a.format.contains(.numeric))
        let b = try inv("-Lnc")
        #expect(b.options.contains(.connection) && b.options.contains(.numeric))
        let c = try inv("-At 10.0.0.1:80 -s rr")
        #expect(c.command == .addService && c.serviceKey == ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80))
        #expect(c.serviceOptions.scheduler == "rr")
        let d = try inv("-lnc")
        #expect(d.command == .list)
        // Argument attached inside a cluster.
        let e = try inv("-At10.0.0.1:81")
        #expect(e.servicePort == 81)
    }

    @Test func equalsForms() throws {
        let a = try inv("--add-service --tcp-service=10.0.0.1:80 --scheduler=rr --persistent=600 --netmask=255.255.0.0")
        #expect(a.serviceOptions.scheduler == "rr")
        #expect(a.serviceOptions.timeout == 600)
        #expect(a.serviceOptions.netmask == 0xFFFF_0000)
        let b = try inv("-a --tcp-service 10.0.0.1:80 --real-server=10.0.0.2 --masquerading --weight=7 --u-threshold=10 --l-threshold=5")
        #expect(b.destination.weight == 7 && b.destination.method == .masquerade)
        #expect(b.destination.upperThreshold == 10 && b.destination.lowerThreshold == 5)
        let c = try inv("-a -t 10.0.0.1:80 -r 10.0.0.2 -w=3")
        #expect(c.destination.weight == 3)
        let f = failure("-L --numeric=1")
        #expect(f == IPVSAdmFailure(stderr: "--numeric=1: option does not take an argument\n", exitCode: 255, terminates: false))
    }

    @Test func optionalPersistentArgument() throws {
        #expect(try inv("-A -t 10.0.0.1:80 -p").serviceOptions.timeout == 360)
        #expect(try inv("-A -t 10.0.0.1:80 -p 300").serviceOptions.timeout == 300)
        let a = try inv("-A -t 10.0.0.1:80 -p -s rr")
        #expect(a.serviceOptions.timeout == 360 && a.serviceOptions.scheduler == "rr")
        #expect(a.serviceOptions.flags.contains(.persistent))
        #expect(try inv("-A -t 10.0.0.1:80 -p600").serviceOptions.timeout == 600)
        #expect(try inv("-A -t 10.0.0.1:0 --persistent").serviceOptions.timeout == 360)
        #expect(failure("-A -t 10.0.0.1:80 -p 0")?.stderr == "invalid timeout value `0' specified\n")
        #expect(failure("-A -t 10.0.0.1:80 -p 2678401")?.stderr == "invalid timeout value `2678401' specified\n")
        #expect(try inv("-A -t 10.0.0.1:80 -p 2678400").serviceOptions.timeout == 2678400)
    }

    @Test func commandMustComeFirst() {
        let tryHelp = IPVSAdmFailure(stderr: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", exitCode: 255)
        #expect(failure("-n -L") == tryHelp)
        #expect(failure("-x") == tryHelp)
        #expect(failure("--bogus") == tryHelp)
        #expect(failure("-6") == tryHelp)
        #expect(failure("--start-daemon") == tryHelp)
        #expect(failure("-L -A") == IPVSAdmFailure(stderr: "invalid option `-A'\n", exitCode: 2))
        #expect(failure("-L -h")?.stderr == "invalid option `-h'\n")
        #expect(failure("-LA")?.stderr == "invalid option `-LA'\n")
        #expect(failure("-L --bogus") == IPVSAdmFailure(stderr: "--bogus: unknown option\n", exitCode: 255, terminates: false))
        #expect(failure("-Lq")?.stderr == "-Lq: unknown option\n")
        #expect(failure("-A -t")?.stderr == "-t: missing argument\n")
    }

    @Test func helpAndVersion() throws {
        #expect(try parse("-h") == .help)
        #expect(try parse("--help") == .help)
        #expect(try parse("-v") == .version)
        #expect(try parse("--version -L") == .version)
    }

    @Test func servicesAndAddresses() throws {
        let v6 = try inv("-A -t [2001:db8::1]:8080")
        #expect(v6.serviceIsIPv6 && v6.servicePort == 8080 && v6.serviceOptions.netmask == 128)
        let bare6 = try inv("-A -t 2001:db8::1 -p")
        #expect(bare6.serviceIsIPv6 && bare6.servicePort == 0)
        #expect(failure("-A -t [2001:db8::1]")?.stderr == "illegal virtual server address[:port] specified\n")
        #expect(failure("-A -t 80")?.stderr == "illegal virtual server address[:port] specified\n")
        let short = try inv("-A -t 10.1:80")
        #expect(short.serviceAddress == IPAddress("10.0.0.1")!)
        let named = try inv("-A -t director:http")
        #expect(named.serviceAddress == IPAddress("10.0.0.100")! && named.servicePort == 80)
        #expect(failure("-A -t nohost:80")?.stderr == "illegal virtual server address[:port] specified\n")
        #expect(failure("-A -t 10.0.0.1:nosuchport")?.stderr == "illegal virtual server address[:port] specified\n")
        #expect(failure("-A -t 10.0.0.1:65536")?.stderr == "illegal virtual server address[:port] specified\n")
        let u = try inv("-A -u 10.0.0.1:domain")
        #expect(u.serviceProtocol == 17 && u.servicePort == 53)
        let s = try inv("-A --sctp-service 10.0.0.1:9 -s rr")
        #expect(s.serviceKey?.proto == .sctp)
    }

    @Test func realServerPortRules() throws {
        #expect(try inv("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -g").destination.port == 80)
        #expect(try inv("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -i").destination.port == 80)
        #expect(try inv("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m").destination.port == 8080)
        #expect(try inv("-a -t 10.0.0.100:80 -r 10.0.0.11 -m").destination.port == 80)
        #expect(try inv("-a -f 5 -r 10.0.0.11:8080").destination.port == 8080)
        #expect(try inv("-a -f 5 -r 10.0.0.11").destination.port == 0)
        let d = try inv("-a -t 10.0.0.100:80 -r web1")
        #expect(d.destination.address == IPAddress("10.0.0.11")! && d.destination.method == .directRoute && d.destination.weight == 1)
    }

    @Test func fwmarkAndIPv6Flag() throws {
        let f = try inv("-A -f 1 -6")
        #expect(f.serviceKey == ServiceKey(fwmark: 1, ipv6: true))
        #expect(f.serviceOptions.netmask == 128)
        #expect(try inv("-A -f 4294967295").fwmark == 4294967295)
        #expect(failure("-A -f 0")?.stderr == "invalid fwmark value `0' specified\n")
        #expect(failure("-A -f 4294967296")?.stderr == "invalid fwmark value `4294967296' specified\n")
        #expect(failure("-A -f 12x")?.stderr == "invalid fwmark value `12x' specified\n")
        #expect(failure("-A -t 10.0.0.1:80 -6") == IPVSAdmFailure(stderr: "-6 used before -f\n\n", exitCode: 2))
        // -6 is outside the matrix: allowed with any command once -f was seen.
        #expect(try inv("-L -f 1 -6").serviceIsIPv6)
    }

    @Test func netmaskIsEvaluatedWhenSeen() throws {
        let a = try inv("-A -t [2001:db8::1]:80 -p -M 64")
        #expect(a.serviceOptions.netmask == 64)
        #expect(failure("-A -t [2001:db8::1]:80 -p -M 129")?.stderr == "illegal ipv6 netmask specified\n")
        // Before the IPv6 service, -M is taken as an IPv4 mask and then reset to 128.
        #expect(try inv("-A -M 64 -t [2001:db8::1]:80 -p").serviceOptions.netmask == 128)
        #expect(failure("-A -t 10.0.0.1:80 -p -M nomask")?.stderr == "illegal virtual server persistent mask specified\n")
    }

    @Test func schedulerTruncationAndFlags() throws {
        #expect(try inv("-A -t 10.0.0.1:80 -s abcdefghijklmnopqrs").serviceOptions.scheduler == "abcdefghijklmno")
        let sh = try inv("-A -t 10.0.0.1:80 -s sh -b sh-fallback,sh-port")
        #expect(sh.serviceOptions.flags.contains([.sched1, .sched2]))
        #expect(try inv("-A -t 10.0.0.1:80 -b flag-3").serviceOptions.flags.contains(.sched3))
        #expect(try inv("-A -t 10.0.0.1:80 -s rr").serviceOptions.flags.isEmpty)
        // -E without -s resets to wlc.
        #expect(try inv("-E -t 10.0.0.1:80").serviceOptions.scheduler == "wlc")
    }

    @Test func setTimeoutsAndDaemons() throws {
        #expect(try inv("--set 10 20 30").timeouts == IPVSTimeouts(tcp: 10, tcpFin: 20, udp: 30))
        #expect(failure("--set -1 2 3") == IPVSAdmFailure(stderr: "-1: unknown option\n", exitCode: 255, terminates: false))
        let d = try inv("--start-daemon master --mcast-interface eth1 --syncid 5 --mcast-group 239.1.1.1 --mcast-port 9000 --mcast-ttl 3 --sync-maxlen 1400")
        #expect(d.daemon == SyncDaemonSnapshot(role: "master", interface: "eth1", syncID: 5, maxLength: 1400, group: "239.1.1.1", port: 9000, ttl: 3))
        #expect(try inv("--start-daemon=backup").daemon.interface == "eth0")
        #expect(try inv("--start-daemon backup --mcast-group ff02::81").daemon.group == "ff02::81")
        #expect(try inv("--stop-daemon master --syncid 3").daemon.role == "master")
        #expect(try inv("--start-daemon master --mcast-interface abcdefghijklmnopq").daemon.interface == "abcdefghijklmno")
    }

    @Test func sortIsANoOpAndNotInTheMatrix() throws {
        #expect(try inv("-L --sort -n").format == [.numeric])
        #expect(try inv("-S -n").format == [.numeric, .rule])
    }

    @Test func matrixCheckedInBitOrder() {
        // The later bit conflicts with the earlier one, whatever the command-line order.
        #expect(failure("-L -t 10.0.0.1:80 -c")?.stderr
                == "The option 'service-address' conflicts with the 'connection' option in the 'list' command\n")
        #expect(failure("-L --daemon --timeout")?.stderr
                == "The option 'daemon' conflicts with the 'timeout' option in the 'list' command\n")
        // First failing bit wins: scheduler (bit 3) before ops (bit 21) for -a.
        #expect(failure("-a -t 10.0.0.1:80 -r 10.0.0.2 -o -s rr")?.stderr
                == "Illegal 'scheduler' option with the 'add-server' command\n")
        // Missing required before a later illegal option.
        #expect(failure("-a -t 10.0.0.1:80 -s rr")?.stderr
                == "Illegal 'scheduler' option with the 'add-server' command\n")
        #expect(failure("-a -t 10.0.0.1:80 -c")?.stderr
                == "Illegal 'connection' option with the 'add-server' command\n")
        #expect(failure("-a -t 10.0.0.1:80 -w 2")?.stderr
                == "You need to supply the 'real-server' option for the 'add-server' command\n")
    }

    @Test func nestedRestoreWhileReadingStdin() {
        #expect(failure("-R", stdin: true)?.exitCode == 255)
        #expect(failure("-R", stdin: true)?.stderr == "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n")
    }

    @Test func popPermutesPositionals() {
        // popt collects non-option words; the leftover is reported after the options.
        #expect(failure("foo -L")?.stderr == "unexpected argument foo\n")
        #expect(failure("-L -- -n")?.stderr == "unexpected argument -n\n")
    }
}
