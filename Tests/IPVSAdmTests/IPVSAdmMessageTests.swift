import Testing
@testable import IPVSAdm
import LVSTestSupport
import LVSModel

/// Every validation message of §1.3–§1.7, with its exit code, through the executor (stderr bytes, no stdout).
@Suite struct IPVSAdmMessageTests {
    static let validation: [(String, String, Int32)] = [
        ("-A -t 10.0.0.1:x:y:z", "illegal virtual server address[:port] specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 999.1.1.1", "illegal real server address[:port] specified\n", 2),
        ("-A -f 0", "invalid fwmark value `0' specified\n", 2),
        ("-A -t 10.0.0.1:80 -6", "-6 used before -f\n\n", 2),
        ("-A -t 10.0.0.1:80 -p abc", "invalid timeout value `abc' specified\n", 2),
        ("-A -t 10.0.0.1:80 -p -M 1.2.3.4.5", "illegal virtual server persistent mask specified\n", 2),
        ("-A -t [::1]:80 -p -M 0", "illegal ipv6 netmask specified\n", 2),
        ("-A -t 10.0.0.1:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'\n", 2),
        ("-A -t 10.0.0.1:80 -b mh-fallback", "incompatible scheduler flag `mh-fallback'\n", 2),
        ("-A -t 10.0.0.1:80 -s sh -b flag-9", "invalid scheduler flag `flag-9'\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "illegal weight specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648", "illegal weight specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -x 2147483648", "illegal u_threshold specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -y z", "illegal l_threshold specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan", "illegal tunnel type specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0", "illegal tunnel port specified\n", 2),
        ("--start-daemon master --syncid 256", "illegal syncid specified\n", 2),
        ("--start-daemon master --sync-maxlen 0", "illegal sync-maxlen specified\n", 2),
        ("--start-daemon master --mcast-group 10.0.0.1", "invalid IPv4 mcast-group `10.0.0.1'\n", 2),
        ("--start-daemon master --mcast-group 2001:db8::1", "invalid IPv6 mcast-group `2001:db8::1'\n", 2),
        ("--start-daemon master --mcast-port 65536", "illegal mcast-port specified\n", 2),
        ("--start-daemon master --mcast-ttl 0", "illegal mcast-ttl specified\n", 2),
        ("-A -t 10.0.0.1:80 -u 10.0.0.1:53", "multiple 'service-address' options specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -g -m", "multiple 'forwarding-method' options specified\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 1 -w 2", "multiple 'weight' options specified\n", 2),
        ("-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command\n", 2),
        ("-D", "You need to supply the 'service-address' option for the 'delete-service' command\n", 2),
        ("-d -t 10.0.0.1:80 -r 10.0.0.2 -w 1", "Illegal 'weight' option with the 'delete-server' command\n", 2),
        ("-C -n", "Illegal 'numeric' option with the 'flush' command\n", 2),
        ("-S -c", "Illegal 'connection' option with the 'save' command\n", 2),
        ("-R -n", "Illegal 'numeric' option with the 'restore' command\n", 2),
        ("-Z --stats", "Illegal 'stats' option with the 'zero' command\n", 2),
        ("--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command\n", 2),
        ("--stop-daemon master --mcast-port 1", "Illegal 'mcast-port' option with the 'stop-daemon' command\n", 2),
        ("-L -c -t 10.0.0.1:80",
         "The option 'service-address' conflicts with the 'connection' option in the 'list' command\n", 2),
        ("-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
         "You need to supply the 'tun-port' option for the 'gue' tunnel type\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-port 5555",
         "Illegal 'tun-port' option with the 'gre' tunnel type\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-port 5555",
         "Illegal 'tun-port' option with the 'ipip' tunnel type\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 5555 --tun-csum --tun-nocsum",
         "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type\n", 2),
        ("-A -t 10.0.0.1:0", "Zero port specified for non-persistent service\n", 2),
        ("-E -t 10.0.0.1", "Zero port specified for non-persistent service\n", 2),
        ("-A -t 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services\n", 2),
        ("-a -t 10.0.0.1:80 -r [2001:db8::2]:80", "Different address family is allowed only for tunneling servers\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-type ipip", "Tunnel options conflict with forward method\n", 2),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-csum", "Tunnel options conflict with forward method\n", 2),
        ("-L -c --stats", "options conflicts in the list command\n", 2),
        ("-L --daemon --persistent-conn", "options conflicts in the list command\n", 2),
        ("-L --timeout --rate", "options conflicts in the list command\n", 2),
        ("--start-daemon slave", "illegal start-daemon parameter specified\n", 2),
        ("--stop-daemon slave", "illegal start_daemon specified\n", 2),
        ("--set 1 2", "--set option requires 3 timeout values\n", 2),
        ("--set 1 2 x", "invalid timeout value `x' specified\n", 2),
        ("--set 1 2 3 4", "unexpected argument 4\n", 2),
        ("-L 10.0.0.1", "unexpected argument 10.0.0.1\n", 2),
        ("-L -A", "invalid option `-A'\n", 2),
        ("-L --start-daemon master", "invalid option `master'\n", 2),
        ("-n -L", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255),
        ("--bogus", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255),
        ("-L --bogus", "--bogus: unknown option\n", 255),
        ("--set -1 2 3", "-1: unknown option\n", 255),
    ]

    @Test(arguments: validation)
    func validationMessage(_ line: String, _ message: String, _ code: Int32) {
        let fake = FakeIPVS()
        let r = adm(line, fake)
        #expect(r.err == message, "\(line)")
        #expect(r.code == code, "\(line)")
        #expect(r.out == "")
        #expect(fake.requests.isEmpty, "no request may reach the daemon for \(line)")
    }

    @Test func tryHelpUsesArgv0() {
        let r = adm("-x", program: "/usr/sbin/ipvsadm")
        #expect(r.err == "Try `/usr/sbin/ipvsadm -h' or '/usr/sbin/ipvsadm --help' for more information.\n")
        #expect(r.code == 255)
    }

    /// §1.9: kernel errors per command, exit 255.
    static let kernel: [(String, IPVSError, String)] = [
        ("-A -t 10.0.0.1:80", .serviceExists, "Service already exists"),
        ("-A -t 10.0.0.1:80", .schedulerNotFound, "Scheduler or persistence engine not found"),
        ("-E -t 10.0.0.1:80", .schedulerNotFound, "Scheduler or persistence engine not found"),
        ("-E -t 10.0.0.1:80", .noSuchService, "No such service"),
        ("-D -t 10.0.0.1:80", .noSuchService, "No such service"),
        ("-Z -t 10.0.0.1:80", .noSuchService, "No such service"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2", .noSuchService, "Service not defined"),
        ("-e -t 10.0.0.1:80 -r 10.0.0.2", .noSuchService, "Service not defined"),
        ("-d -t 10.0.0.1:80 -r 10.0.0.2", .noSuchService, "Service not defined"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2", .destinationExists, "Destination already exists"),
        ("-e -t 10.0.0.1:80 -r 10.0.0.2", .noSuchDestination, "No such destination"),
        ("-d -t 10.0.0.1:80 -r 10.0.0.2", .noSuchDestination, "No such destination"),
        ("--start-daemon master", .daemonRunning, "Daemon has already run"),
        ("--stop-daemon backup", .noDaemon, "No daemon is running"),
        ("-A -t 10.0.0.1:80", .invalid, "Invalid operation.  Possibly wrong module version, address not unicast, ..."),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2", .noMemory, "Memory allocation problem"),
        ("-a -t 10.0.0.1:80 -r 10.0.0.2 -y 5", .outOfRange, "Numerical result out of range"),
        ("--set 1 1 1", .invalid, "Invalid operation.  Possibly wrong module version, address not unicast, ..."),
        ("-C", .noMemory, "Memory allocation problem"),
        // errno without a row for that operation: strerror.
        ("-D -t 10.0.0.1:80", .serviceExists, "File exists"),
        ("-E -t 10.0.0.1:80", .destinationExists, "File exists"),
    ]

    @Test(arguments: kernel)
    func kernelErrorMessage(_ line: String, _ error: IPVSError, _ message: String) {
        let fake = FakeIPVS()
        fake.failNext = error
        let r = adm(line, fake)
        #expect(r.err == message + "\n")
        #expect(r.code == 255)
    }

    @Test func realKernelSemanticsThroughTheFake() {
        let fake = FakeIPVS()
        #expect(adm("-A -t 10.0.0.1:80 -s nosuch", fake).err == "Scheduler or persistence engine not found\n")
        #expect(adm("-A -t 10.0.0.1:80", fake).code == 0)
        let dup = adm("-A -t 10.0.0.1:80", fake)
        #expect(dup.err == "Service already exists\n" && dup.code == 255)
        #expect(adm("-a -t 10.0.0.1:80 -r 10.0.0.2 -y 5", fake).err == "Numerical result out of range\n")
        #expect(adm("-e -t 10.0.0.1:80 -r 10.0.0.2", fake).err == "No such destination\n")
        #expect(adm("-a -t 10.0.0.9:80 -r 10.0.0.2", fake).err == "Service not defined\n")
        #expect(adm("--stop-daemon master", fake).err == "No daemon is running\n")
        #expect(adm("--start-daemon master", fake).code == 0)
        #expect(adm("--start-daemon master", fake).err == "Daemon has already run\n")
    }

    @Test func listingFailuresExitOne() {
        let fake = FakeIPVS()
        let r = adm("-L -t 10.0.0.1:80", fake)
        #expect(r.err == "No such service\n" && r.code == 1 && r.out == "")
        fake.failNext = .noSuchService
        let all = adm("-Ln", fake)
        #expect(all.err == "No such service\n" && all.code == 1)
        fake.failNext = .noMemory
        let conns = adm("-Lnc", fake)
        #expect(conns.err == "Memory allocation problem\n" && conns.code == 1)
    }

    @Test func daemonUnreachable() {
        let fake = FakeIPVS()
        fake.unreachable = true
        let r = adm("-Ln", fake, program: "/usr/sbin/lvsadm")
        #expect(r.err == "lvsadm: cannot reach lvsd at /tmp/none.sock: No such file or directory (is lvsd running?)\n")
        #expect(r.code == 2)
        let sym = adm("-A -t 10.0.0.1:80", fake, program: "/sbin/ipvsadm")
        #expect(sym.err.hasPrefix("ipvsadm: cannot reach lvsd") && sym.code == 2)
        #expect(adm("", fake).code == 2)
        // Help and version need no daemon.
        let h = adm("-h", fake)
        #expect(h.code == 0 && h.err == "" && h.out.hasPrefix("ipvsadm v1.31"))
        let v = adm("--version", fake)
        #expect(v.code == 0 && v.out == "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n")
    }

    @Test func helpText() {
        let r = adm("-h", program: "ipvsadm")
        let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0] == "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)")
        #expect(lines[1] == "Usage:")
        #expect(lines[2] == "  ipvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]")
        #expect(lines[14] == "  ipvsadm -h")
        #expect(lines[2...14].allSatisfy { $0.hasPrefix("  ipvsadm ") })
        #expect(lines[15] == "")
        for section in ["Commands:", "virtual-service:", "Options:", "Daemon Options:"] {
            #expect(lines.contains(section))
        }
        #expect(r.out.contains("rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,"))
        #expect(!r.out.contains("twos"))
        #expect(r.out.contains("may be sip,"))
        // The program name is argv[0] as given.
        #expect(adm("--help", program: "./lvsadm").out.contains("  ./lvsadm -C\n"))
        // -h ends the command line even with further (invalid) words.
        #expect(adm("-h --bogus").code == 0)
    }
}
