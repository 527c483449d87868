import ArgumentParser
import LVSDaemon

/// lvsd: the user-space IPVS director (DR, TUN and NAT). This file only parses the command line;
/// `LVSD` (LVSDaemon) runs the director.
struct LVSDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lvsd",
        abstract: "User-space Linux Virtual Server director (DR, TUN and NAT), driven by lvsadm/ipvsadm syntax.",
        discussion: """
        lvsd forwards the frames of the virtual services (the VIPs) it is given through lvsadm \
        (ipvsadm's syntax, on the control socket) or --config, to the chosen real server by its \
        forwarding method: direct routing (-g, only the destination MAC rewritten), tunnelling (-i: \
        IPIP, GUE or GRE) or masquerading (-m: NAT, the replies through lvsd). With a keepalived.conf it applies the virtual \
        servers and their health checks, and runs VRRP itself for the vrrp_instance blocks \
        (keepalived 2.2.7's semantics, interoperable with keepalived): a MASTER answers ARP and \
        neighbour solicitations for its addresses and forwards, a BACKUP does neither; \
        lvs_sync_daemon starts both sync daemons. SIGHUP (or lvsadm daemon reload) re-reads \
        keepalived.conf and applies the difference, virtual servers and VRRP blocks alike; SIGTERM \
        and SIGINT stop lvsd, a VRRP MASTER first sending a priority-0 \
        advert. lvsadm daemon status shows the data plane, counters and each VRRP instance. \
        See lvsadm(8), keepalived.conf(5), and docs/ha.md, docs/keepalived.md, docs/sync.md.
        """,
        version: PackageVersion.string)

    @Option(name: .customLong("interface"), help: "Interface to load-balance on (repeatable).")
    var interfaces: [String] = []

    @Option(help: "Control socket path (lvsadm uses LVSD_SOCKET or this default).")
    var socket: String = "/run/lvsd/lvsd.sock"

    @Option(help: "keepalived.conf (virtual servers and health checks) or an ipvsadm-save rules file, applied at start; SIGHUP reloads it.")
    var config: String?

    @Option(name: [.customLong("check-config"), .customLong("config-test")], help: "Only validate FILE and exit (0 valid, 5 errors, 2 fatal).")
    var checkConfig: String?

    @Option(name: .customLong("fwmark"), help: "Firewall-mark rule DST[/LEN][,tcp|udp|sctp[,PORT[-PORT]]]=MARK (repeatable).")
    var markRules: [String] = []

    @Option(help: "Maximum connection entries (connections and persistence templates).")
    var maxConnections: Int = 4 << 20

    @Option(help: "SYN-flood defence drop_entry: 0 off, 1 or 2 automatic (engaged while fewer than --amemthresh % of a worker's connection entries are free), 3 always. Engaged, a new connection that finds the table full evicts a half-open (SYN_RECV) or finished (TIME_WAIT, CLOSE) TCP entry instead of being refused; never an ESTABLISHED one.")
    var dropEntry: Int = 1

    @Option(help: "SYN-flood defence drop_packet: 0 off, 1 or 2 automatic, 3 always. Engaged, one of every N new-connection packets is dropped (N = --am-droprate when 3; automatic: threshold / (threshold - free entries), so all at a full table).")
    var dropPacket: Int = 0

    @Option(help: "SYN-flood defence secure_tcp: 0 off, 1 or 2 automatic, 3 always. Engaged, a new TCP connection's SYN_RECV entry times out after --secure-tcp-timeout seconds instead of 60.")
    var secureTcp: Int = 1

    @Option(help: "The automatic defences engage while fewer than PERCENT % (1-99) of a worker's connection entries are free (the kernel: free memory below amemthresh).")
    var amemthresh: Int = 10

    @Option(help: "drop_packet 3 drops one of every N new-connection packets (2-1000000).")
    var amDroprate: Int = 10

    @Option(help: "SYN_RECV timeout in seconds (1-60) while secure_tcp is engaged.")
    var secureTcpTimeout: Int = 3

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Serve Prometheus metrics on ADDRESS:PORT (off by default), e.g. 127.0.0.1:9100.")
    var metrics: String?

    @Option(help: "Data-plane worker threads (default: the CPUs lvsd may run on).")
    var workers: Int?

    @Flag(help: "Do not answer ARP / neighbour solicitations for the VIPs nor announce them (the VIP owned by the kernel, or moved by a VRRP daemon other than lvsd's own).")
    var noArp = false

    @Flag(help: "Do not install the netdev-ingress nftables table that keeps the director's kernel off VIP traffic.")
    var noKernelGuard = false

    @Option(help: "Packet I/O: auto (afxdp where its XDP program loads and attaches natively on every interface, else afpacket), afpacket (packet sockets + nftables guard), afxdp (XDP program + AF_XDP sockets), xdp (afxdp, with established connections forwarded inside the XDP program) or tc (established connections forwarded by a tc ingress program, the rest through packet sockets).")
    var dataplane: String = "auto"

    @Option(help: "AF_XDP sockets (afxdp, xdp): auto (zero-copy where the driver has it, else copy), copy or zero-copy.")
    var xskMode: String = "auto"

    @Option(help: "After traffic, how long (µs) a worker keeps checking its rings, yielding the CPU between checks, before it sleeps in poll(2); saves a thread wake-up per request at light load. 0 = sleep at once (least CPU).")
    var pollSpinUs: Int = 200

    @Option(help: "A BPF object file for --dataplane afxdp/xdp/tc instead of the one built into lvsd (bpf/lvs_xdp.c, compiled by swift build).")
    var xdpObject: String?

    @Option(help: ArgumentHelp("sysctl sync_refresh_period: the master sync daemon does not re-send a connection whose expiry moved less than min(SECONDS, max(timeout/2, 10 s)) since it last sent it (0-2147483; 0, the default, sends by the packet count alone).", valueName: "seconds"))
    var syncRefreshPeriod: Int = 0

    @Option(help: ArgumentHelp("sysctl sync_retries: with --sync-refresh-period, re-send an unchanged connection up to N times (0-3), sync-refresh-period/8 apart.", valueName: "n"))
    var syncRetries: Int = 0

    @Option(name: .customLong("settings"), help: ArgumentHelp("A file of the kernel's IPVS run-time settings, applied at start: `name = value` lines as in sysctl.conf (also `net.ipv4.vs.name = value`; `#` comments). See lvsadm daemon sysctl and docs/settings.md.", valueName: "file"))
    var settingsFile: String?

    @Option(name: .customLong("set-sysctl"), help: ArgumentHelp("Set one run-time setting at start, after --settings and the flags above (repeatable), e.g. sloppy_tcp=1.", valueName: "name=value"))
    var setSysctl: [String] = []
    @Option(help: ArgumentHelp("Restart state: at a stop lvsd writes its connections and persistence templates here, and the next lvsd reads them before it forwards (default: /run/lvsd/state, or SOCKET.state with --socket; \"\" for none).", valueName: "path"))
    var stateFile: String?

    @Flag(help: "At a stop, leave the nftables guard (afpacket) or the BPF program with its maps (afxdp, xdp, tc: the fast path keeps forwarding, frames for lvsd are dropped) in place so that the director's kernel does not answer for the VIPs until the next lvsd takes over; that lvsd removes the guard or adopts the program's connection map and replaces the program. For restarts; without a next lvsd they stay until removed (nft delete table netdev lvsd_PID; ip link set IFACE xdp off).")
    var restartGuard = false

    @Option(help: ArgumentHelp("A dead lvsd lets go of the VIPs after SECONDS (killed, hung, or stopped with --restart-guard and no next lvsd): its BPF programs leave every frame to the kernel, its nftables guard accepts, so that the kernel or the VRRP peer takes over. lvsd refreshes a heartbeat every SECONDS/4. 0: never (the leftovers claim the VIPs until the next lvsd).", valueName: "seconds"))
    var orphanTimeout: Double = 3

    @Option(help: ArgumentHelp("Write the restart state file every SECONDS while lvsd runs (from a snapshot the workers take in slices), so that after a crash (kill -9) the next lvsd restores what the last checkpoint held. 0: only at a stop.", valueName: "seconds"))
    var checkpointInterval: Double = 5
    @Option(help: ArgumentHelp("Announce each ready VIP (its service exists, a real server with weight > 0 is up, the data plane forwards) as a route VIP/32 (/128) proto static in kernel routing table T, through a device that lvsd holds (lvsann0): BIRD's `kernel table T; learn;` or FRR's `ip import-table T` hand it to BGP. The routes go when the VIP stops being ready, at a stop, and with lvsd's process (also kill -9). 1-4294967295 except 253-255; off by default. See docs/scale-out.md.", valueName: "table"))
    var announceTable: Int?

    @Option(help: ArgumentHelp("With --announce-table: at a stop (SIGTERM, SIGINT) withdraw every route first, then keep forwarding for SECONDS (0-3600) while the routers move the flows, then stop; a second SIGTERM stops at once.", valueName: "seconds"))
    var announceHold: Int = 5

    @Option(help: ArgumentHelp("Tunnel real servers' routes follow the kernel's route, address and link notifications; they are also looked up again every SECONDS (1-86400), in case notifications were lost.", valueName: "seconds"))
    var tunnelRouteRefresh: Int = 60

    func validate() throws {
        var o = DaemonOptions()
        o.syncRefreshPeriod = syncRefreshPeriod
        o.syncRetries = syncRetries
        do { _ = try o.validatedSyncSettings() } catch { throw ValidationError("\(error)") }
        o.settingsFile = settingsFile
        o.setSysctl = setSysctl
        do { _ = try o.sysctlAssignments() } catch { throw ValidationError("\(error)") }
        o.orphanTimeout = orphanTimeout
        do { _ = try o.validatedOrphanTimeout() } catch { throw ValidationError("\(error)") }
        o.checkpointInterval = checkpointInterval
        do { _ = try o.validatedCheckpointInterval() } catch { throw ValidationError("\(error)") }
        o.announceTable = announceTable
        o.announceHold = announceHold
        do { _ = try o.validatedAnnouncement() } catch { throw ValidationError("\(error)") }
    }

    func run() async throws { try await runDaemon() }

    /// Named apart from `run()`: top-level code would pick ParsableCommand's synchronous `run()`
    /// (which prints the help) over the asynchronous one.
    func runDaemon() async throws {
        if let checkConfig { throw ExitCode(ConfigFormat.check(path: checkConfig)) }
        var o = DaemonOptions()
        o.interfaces = interfaces
        o.socket = socket
        o.config = config
        o.markRules = markRules
        o.maxConnections = maxConnections
        o.dropEntry = dropEntry
        o.dropPacket = dropPacket
        o.secureTcp = secureTcp
        o.amemthresh = amemthresh
        o.amDroprate = amDroprate
        o.secureTcpTimeout = secureTcpTimeout
        o.logLevel = logLevel
        o.metrics = metrics
        o.workers = workers
        o.noArp = noArp
        o.noKernelGuard = noKernelGuard
        o.dataplane = dataplane
        o.xskMode = xskMode
        o.pollSpinUs = pollSpinUs
        o.xdpObject = xdpObject
        o.syncRefreshPeriod = syncRefreshPeriod
        o.syncRetries = syncRetries
        o.settingsFile = settingsFile
        o.setSysctl = setSysctl
        o.stateFile = stateFile
        o.restartGuard = restartGuard
        o.orphanTimeout = orphanTimeout
        o.checkpointInterval = checkpointInterval
        o.announceTable = announceTable
        o.announceHold = announceHold
        o.tunnelRouteRefresh = tunnelRouteRefresh
        let status = await LVSD.main(options: o)
        if status != 0 { throw ExitCode(status) }
    }
}

// Top-level code (this file is main.swift): signal dispositions first, on the only thread there
// is yet (a SIGHUP or SIGTERM must never kill lvsd), then parse and run.
guard LVSD.installSignalHandlers() else { LVSDCommand.exit(withError: ExitCode(1)) }
do {
    let command = try LVSDCommand.parse()
    try await command.runDaemon()
} catch {
    LVSDCommand.exit(withError: error)
}
