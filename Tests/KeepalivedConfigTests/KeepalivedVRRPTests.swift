import Foundation
import Testing
@testable import KeepalivedConfig
import LVSModel
import LVSVRRP

private func parse(_ text: String) throws -> (KeepalivedConfig, [KeepalivedDiagnostic]) {
    try KeepalivedLoader.parse(text: text, file: "keepalived.conf")
}

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

/// A valid instance VI_1 (eth0, VRID 51, one IPv4 VIP) with `body` added to its block.
private func instance(_ body: String, name: String = "VI_1") -> String {
    "vrrp_instance \(name) {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress { 10.0.0.1/24 }\n\(body)\n}\n"
}

/// One input and what keepalived 2.2.7 says about it (`keepalived -l -D -t -f FILE`, Debian
/// bookworm): the texts it prints (each must be part of one of our messages) and its exit
/// status (0 valid, 5 configuration errors, 2 fatal).
struct KeepalivedVerdict: CustomStringConvertible {
    var input: String
    var messages: [String]
    var exit: Int32
    var description: String { messages.first ?? input }
}

let keepalivedVRRPVerdicts: [KeepalivedVerdict] = [
    .init(input: instance(" state MASTER\n priority 150\n advert_int 2\n preempt_delay 5\n authentication {\n auth_type PASS\n auth_pass secret\n }"), messages: [], exit: 0),
    .init(input: instance(" state master"), messages: ["(VI_1) unknown state 'master', defaulting to BACKUP"], exit: 5),
    .init(input: instance(" priority 300"), messages: ["number '300' outside range [1, 255]", "(VI_1) Priority not valid! must be between 1 & 255. Using default 100"], exit: 5),
    .init(input: instance(" priority abc"), messages: ["invalid number 'abc'", "(VI_1) Priority not valid! must be between 1 & 255. Using default 100"], exit: 5),
    .init(input: instance(" authentication {\n auth_type PASS\n auth_pass 123456789\n }"), messages: ["Truncating auth_pass to 8 characters"], exit: 5),
    .init(input: instance(" authentication {\n auth_type pass\n auth_pass 1234\n }"), messages: ["(VI_1) unknown authentication type 'pass'"], exit: 5),
    .init(input: instance(" authentication {\n auth_type PASS\n }"), messages: ["(VI_1) Authentication specified but no password given. Ignoring"], exit: 5),
    .init(input: instance(" state MASTER\n priority 100\n authentication {\n auth_type AH\n auth_pass 1234\n }"), messages: ["(VI_1) Initial state master is incompatible with AH authentication - clearing"], exit: 5),
    .init(input: instance(" version 3\n authentication {\n auth_type PASS\n auth_pass 1234\n }"), messages: ["(VI_1) VRRP version 3 does not support authentication. Ignoring."], exit: 5),
    .init(input: "vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress { 10.0.0.1/24 }\n}\n", messages: ["(VI_1) the virtual router id must be set"], exit: 5),
    .init(input: instance(" virtual_router_id 0"), messages: ["number '0' outside range [1, 255]", "(VI_1): VRID '0' not valid - must be between 1 & 255"], exit: 5),
    .init(input: instance(" virtual_router_id 256"), messages: ["number '256' outside range [1, 255]", "(VI_1): VRID '256' not valid - must be between 1 & 255"], exit: 5),
    .init(input: "vrrp_instance VI_1 {\n virtual_router_id 51\n virtual_ipaddress { 10.0.0.1/24 }\n}\n", messages: ["(VI_1) Unknown interface!"], exit: 5),
    .init(input: "vrrp_instance VI_1 {\n virtual_router_id 51\n virtual_ipaddress { 10.0.0.1/24 }\n unicast_src_ip 10.0.0.5\n unicast_peer { 10.0.0.6 }\n}\n", messages: ["(VI_1) Unknown interface!"], exit: 5),
    .init(input: "vrrp_instance {\n interface eth0\n}\n", messages: ["vrrp_instance must have a name"], exit: 5),
    .init(input: instance(" state MASTER\n nopreempt"), messages: ["(VI_1) nopreempt is incompatible with priority 255. resetting nopreempt"], exit: 5),
    .init(input: instance(" priority 255\n nopreempt"), messages: ["(VI_1) nopreempt is incompatible with priority 255. resetting nopreempt"], exit: 5),
    .init(input: instance(" state MASTER\n priority 100\n nopreempt"), messages: ["(VI_1) Warning - nopreempt will not work with initial state MASTER - clearing"], exit: 5),
    .init(input: instance(" preempt_delay 2000"), messages: ["number '2000' outside range [0.000000, 1000.000000]", "(VI_1) Preempt_delay not valid! must be between 0-1000"], exit: 5),
    .init(input: instance(" advert_int 1.5"), messages: ["(VI_1) VRRPv2 advertisement interval 1.500000s must be an integer. rounding"], exit: 5),
    .init(input: instance(" advert_int 0"), messages: ["number '0' outside range [0.010000, 255.000000]", "(VI_1) Advert interval (0) not valid! Must be > 0 - ignoring"], exit: 5),
    .init(input: instance(" version 3\n advert_int 50"), messages: ["(VI_1) VRRPv3 advertisement interval 50.00s is out of range. Must be less than 40.96s. Setting to 40.95s"], exit: 5),
    .init(input: instance(" version 3\n advert_int 0.015"), messages: ["(VI_1) VRRPv3 advertisement interval 0.015000s must be in units of 10ms - rounding"], exit: 5),
    .init(input: instance(" version 4"), messages: ["number '4' outside range [2, 3]", "(VI_1): Version must be either 2 or 3"], exit: 5),
    .init(input: instance(" virtual_ipaddress { 2001:db8::1 }"), messages: ["(VI_1): address family must match VRRP instance [2001:db8::1] - ignoring"], exit: 5),
    .init(input: instance(" virtual_ipaddress { 10.0.0.300 }"), messages: ["VRRP parsed invalid IP 10.0.0.300. skipping IP..."], exit: 5),
    .init(input: instance(" virtual_ipaddress { 10.0.0.2/24 brd 10.0.0.255 dev eth0 scope link label eth0:1 no_track }"), messages: [], exit: 0),
    .init(input: instance(" virtual_ipaddress { 10.0.0.2/24 foo bar }"), messages: ["Unknown configuration entry 'foo' for ip address - ignoring", "Unknown configuration entry 'bar' for ip address - ignoring"], exit: 5),
    .init(input: instance(" virtual_ipaddress { 10.0.0.2/24 brd foo }"), messages: ["VRRP is trying to assign invalid broadcast foo. skipping VIP..."], exit: 5),
    .init(input: instance(" virtual_ipaddress { 10.0.0.2/33 }"), messages: ["number '33' outside range [0, 32]", "Invalid address prefix len 33 for address 10.0.0.2/33 - using 32"], exit: 5),
    .init(input: instance(" virtual_ipaddress_excluded {\n 2001:db8::1\n 10.0.0.9\n }"), messages: [], exit: 0),
    .init(input: "vrrp_instance VI_6 {\n interface eth0\n virtual_router_id 51\n}\n", messages: ["(VI_6) No VIP specified; at least one is sensible"], exit: 5),
    .init(input: instance("") + instance("", name: "VI_2").replacingOccurrences(of: "10.0.0.1/24", with: "10.0.0.2/24"), messages: ["VI_1 and VI_2 both use VRID 51 with IPv4 on interface eth0"], exit: 5),
    .init(input: instance("") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress { 2001:db8::2 }\n}\n", messages: [], exit: 0),
    .init(input: instance("") + instance(""), messages: ["vrrp instance VI_1 already defined"], exit: 5),
    .init(input: instance(" track_script { chk }"), messages: ["(VI_1) track script chk not found, ignoring..."], exit: 5),
    .init(input: "vrrp_script chk {\n interval 2\n}\n" + instance(" track_script { chk }"), messages: ["No script set for vrrp_script chk - removing", "(VI_1) track script chk not found, ignoring..."], exit: 5),
    .init(input: "vrrp_script chk {\n script /bin/true\n}\n" + instance(" track_script {\n chk\n chk weight 10\n }"), messages: ["(VI_1) duplicate track_script chk - ignoring"], exit: 5),
    .init(input: "vrrp_script chk {\n script /bin/true\n}\n" + instance(" track_script { chk weight x }"), messages: ["invalid number 'x'", "(VI_1) track script chk: weight must be between [-253..253] inclusive, ignoring..."], exit: 5),
    .init(input: "vrrp_script chk {\n script /bin/true\n}\n" + instance(" track_script { chk weight 300 }"), messages: ["number '300' outside range [-254, 254]", "(VI_1) track script chk: weight must be between [-253..253] inclusive, ignoring..."], exit: 5),
    .init(input: "vrrp_script chk {\n script /bin/true\n interval 0\n timeout 0\n rise 0\n fall 0\n weight 10 foo\n}\n" + instance(" track_script { chk }"),
          messages: ["(chk): vrrp script interval must be greater than 0, setting to 1", "(chk): vrrp script timeout must be greater than 0, setting to 1",
                     "number '0' outside range [1, 2147483647]", "(chk): vrrp script rise value '0' invalid, defaulting to 1",
                     "(chk): vrrp script fall value '0' invalid, defaulting to 1", "vrrp_script chk unknown weight option foo"], exit: 5),
    .init(input: "vrrp_script chk {\n script /bin/true\n weight 300\n}\n" + instance(" track_script { chk }"), messages: ["number '300' outside range [-253, 253]", "vrrp_script chk weight 300 must be in [-253, 253]"], exit: 5),
    .init(input: instance(" track_interface {\n lo\n lo weight 5\n }"), messages: ["(VI_1) duplicate track_interface lo - ignoring"], exit: 5),
    .init(input: instance(" track_interface { eth0 }"), messages: ["(VI_1) Ignoring track_interface eth0 since own interface"], exit: 5),
    .init(input: instance(" track_interface {\n lo weight 300\n ifb0 weight\n ifb1 foo\n }"),
          messages: ["number '300' outside range [-254, 254]", "(VI_1) weight 300 for lo must be between [-253..253] inclusive. Ignoring...",
                     "(VI_1) weight without value specified for track_interface ifb0 - ignoring", "(VI_1) unknown track_interface ifb1 option foo - ignoring"], exit: 5),
    .init(input: instance("") + "vrrp_sync_group G { group { VI_1 VI_X } }\n", messages: ["Virtual router VI_X specified in sync group G doesn't exist - ignoring", "Sync group G has only 1 virtual router(s) - this probably isn't what you want"], exit: 5),
    .init(input: instance("") + "vrrp_sync_group G { }\n", messages: ["Sync group G has no virtual router(s). removing"], exit: 5),
    .init(input: instance("") + "vrrp_sync_group G { group { VI_1 } }\nvrrp_sync_group H { group { VI_1 } }\n",
          messages: ["Virtual router VI_1 cannot exist in more than one sync group; ignoring H", "Sync group H, no matching virtual router found in group declaration - removing"], exit: 5),
    .init(input: instance("") + "vrrp_sync_group G {\n group {\n VI_1\n }\n track_script { nochk }\n}\n", messages: ["(G) track script nochk not found, ignoring..."], exit: 5),
    .init(input: instance(" unicast_src_ip 10.0.0.5\n unicast_peer {\n 10.0.0.6\n 10.0.0.7\n }"), messages: [], exit: 0),
    .init(input: instance(" unicast_src_ip 10.0.0.5\n unicast_peer { 2001:db8::6 }"),
          messages: ["Configuration error: VRRP instance[VI_1] and unicast peer address[2001:db8::6] MUST be of the same family !!! Skipping...",
                     "(VI_1) A unicast keyword has been specified without any unicast peers. Defaulting to multicast. This usage is deprecated - please update your configuration."], exit: 5),
    .init(input: instance(" unicast_peer { 10.0.0.666 }"), messages: ["Configuration error: VRRP instance[VI_1] malformed unicast peer address[10.0.0.666]. Skipping..."], exit: 5),
    .init(input: instance(" unicast_src_ip foo"), messages: ["Configuration error: VRRP instance[VI_1] malformed src address[foo]. Skipping..."], exit: 5),
    .init(input: instance(" unicast_src_ip 2001:db8::5"), messages: ["Configuration error: VRRP instance[VI_1] and src address[2001:db8::5] MUST be of the same family !!! Skipping..."], exit: 5),
    .init(input: instance(" mcast_src_ip 10.0.0.5\n mcast_dst_ip 224.0.0.19"), messages: [], exit: 0),
    .init(input: instance(" mcast_dst_ip 10.0.0.1"), messages: ["(VI_1) mcast_dst_ip 10.0.0.1 not multicast. Skipping..."], exit: 5),
    .init(input: instance(" down_timer_adverts 200"), messages: ["number '200' outside range [1, 100]", "(VI_1): Invalid down_timer_adverts [1:100] '200'"], exit: 5),
    .init(input: instance(" garp_master_repeat 0\n garp_master_refresh_repeat 0"),
          messages: ["(VI_1): garp_master_repeat must be greater than 0, setting to 1", "(VI_1): garp_master_refresh_repeat must be greater than 0, setting to 1"], exit: 5),
    .init(input: instance(" garp_master_delay 1.5\n garp_master_refresh abc"),
          messages: ["invalid number '1.5'", "(VI_1): garp_master_delay '1.5' invalid - ignoring", "(VI_1): Invalid garp_master_refresh 'abc' - ignoring"], exit: 5),
    .init(input: instance(" lvs_sync_daemon_interface eth0"), messages: ["(VI_1) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.", "Please use global lvs_sync_daemon"], exit: 5),
    .init(input: "global_defs {\n lvs_sync_daemon eth0 VI_1 id 5 maxlen 1000 port 8850 ttl 2 group 224.0.0.82\n}\n" + instance(""), messages: [], exit: 0),
    .init(input: "global_defs {\n lvs_sync_daemon eth0 VI_1 id 300\n}\n" + instance(""), messages: ["number '300' outside range [0, 255]", "Invalid syncid (300) - defaulting to vrid"], exit: 5),
    .init(input: "global_defs {\n lvs_sync_daemon eth0 VI_1 foo 3\n}\n" + instance(""), messages: ["invalid number 'foo'", "Invalid syncid (foo) - defaulting to vrid", "Unknown option 3 specified for lvs_sync_daemon"], exit: 5),
    .init(input: "global_defs {\n lvs_sync_daemon eth0 VI_1 maxlen 0 port 0 ttl 0 group 10.0.0.1\n}\n" + instance(""),
          messages: ["number '0' outside range [1, 65507]", "Invalid lvs_sync_daemon maxlen (0) - ignoring", "Invalid lvs_sync_daemon port (0) - ignoring",
                     "Invalid lvs_sync_daemon ttl (0) - ignoring", "lvs_sync_daemon group address 10.0.0.1 is not multicast - ignoring"], exit: 5),
    .init(input: "global_defs {\n vrrp_version 4\n}\n" + instance(""), messages: ["number '4' outside range [2, 3]", "VRRP Error: Version must be either 2 or 3"], exit: 5),
    .init(input: "global_defs {\n vrrp_startup_delay 5000\n}\n" + instance(""), messages: ["number '5000' outside range [0.001000, 4294.967295]", "vrrp_startup_delay '5000' is invalid"], exit: 5),
    .init(input: "global_defs {\n vrrp_garp_master_repeat 0\n}\n" + instance(""), messages: ["vrrp_garp_master_repeat must be greater than 0, setting to 1"], exit: 5),
    .init(input: "global_defs {\n vrrp_gna_interval x\n}\n" + instance(""), messages: ["invalid number 'x'", "vrrp_gna_interval 'x' is invalid"], exit: 5),
    .init(input: "global_defs {\n vrrp_mcast_group4 10.0.0.1\n}\n" + instance(""), messages: ["vrrp_mcast_group4 [10.0.0.1] is not multicast. Skipping"], exit: 5),
    .init(input: instance(" garp_interval 0.01"), messages: ["Unknown keyword 'garp_interval'"], exit: 5),
    .init(input: "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id\n}\n",
          messages: ["*** Configuration line starting `virtual_router_id` is missing a parameter after keyword `virtual_router_id` at word position 2"], exit: 2),
]

@Suite struct KeepalivedVRRPTests {
    /// Each input gives keepalived's messages (ours contain its text; keepalived's capital
    /// "Unknown keyword" is our "unknown keyword … in BLOCK") and its exit status.
    @Test(arguments: keepalivedVRRPVerdicts) func keepalivedsVerdict(_ v: KeepalivedVerdict) {
        var diagnostics: [KeepalivedDiagnostic] = []
        var exit: Int32 = 0
        do {
            let (_, d) = try parse(v.input)
            diagnostics = d
            exit = d.contains { $0.severity == .error } ? 5 : 0
        } catch let e as KeepalivedLoadError {
            diagnostics = e.diagnostics
            exit = 2
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(exit == v.exit, "\(diagnostics.map(\.description))")
        for m in v.messages {
            #expect(diagnostics.contains { $0.message.lowercased().contains(m.lowercased()) }, "want '\(m)' in \(diagnostics.map(\.description))")
        }
        if v.exit == 0 { #expect(!diagnostics.contains { $0.severity == .error }) }
    }

    @Test func instanceSettingsWithDefaultsAndGlobals() throws {
        let (c, d) = try parse("""
        global_defs {
            vrrp_version 2
            vrrp_garp_master_delay 10
            vrrp_garp_master_repeat 3
            vrrp_garp_master_refresh 60
            vrrp_garp_interval 0.001
            vrrp_gna_interval 0.002
            vrrp_startup_delay 5.5
            vrrp_mcast_group4 224.0.0.19
            lvs_sync_daemon eth1 VI_1
        }
        vrrp_script chk_http {
            script "/usr/local/bin/check http"
            interval 2
            timeout 3
            weight -20 reverse
            rise 2
            fall 3
            user nobody nogroup
        }
        vrrp_script unused { script /bin/true }
        vrrp_instance VI_1 {
            state MASTER
            interface eth0
            virtual_router_id 51
            advert_int 1
            authentication {
                auth_type PASS
                auth_pass s3cret
            }
            virtual_ipaddress {
                192.168.1.100/24 dev eth0 label eth0:vip
                192.168.1.101
            }
            virtual_ipaddress_excluded { 2001:db8::5/64 }
            garp_master_repeat 2
            track_interface { eth1 weight -30 }
            track_script { chk_http }
            notify_master "/etc/keepalived/notify.sh master" root
            notify /etc/keepalived/notify.sh
            smtp_alert
            preempt_delay 2.5
            use_vmac
        }
        vrrp_instance VI_2 {
            state BACKUP
            interface eth0
            virtual_router_id 52
            priority 90
            nopreempt
            version 3
            advert_int 0.5
            down_timer_adverts 5
            unicast_src_ip 10.0.0.1
            unicast_peer {
                10.0.0.2
            }
            virtual_ipaddress { 10.1.1.1 }
        }
        vrrp_instance VI_6 {
            interface eth0
            virtual_router_id 51
            virtual_ipaddress { 2001:db8::1/64 }
        }
        vrrp_sync_group G {
            group {
                VI_1
                VI_2
            }
            notify_fault /bin/fault.sh
        }
        """)
        let errors = d.filter { $0.severity == .error }
        #expect(errors.isEmpty, "\(errors.map(\.description))")
        let v = c.vrrp
        #expect(v.instances.map(\.name) == ["VI_1", "VI_2", "VI_6"])
        let a = v.instances[0]
        #expect(a.initialMaster && a.priority == 255 && a.version == 2 && a.interface == "eth0" && a.virtualRouterID == 51)
        #expect(a.advertIntervalCentiseconds == 100 && a.authPassword == Array("s3cret".utf8) && a.preempt)
        #expect(a.preemptDelay == 2_500_000_000)
        #expect(a.virtualAddresses == [
            VRRPAddress(address: ip("192.168.1.100"), prefixLength: 24, device: "eth0", label: "eth0:vip"),
            VRRPAddress(address: ip("192.168.1.101"), prefixLength: 32),
        ])
        #expect(a.excludedAddresses == [VRRPAddress(address: ip("2001:db8::5"), prefixLength: 64)])
        #expect(a.gratuitous.masterDelay == 10_000_000_000 && a.gratuitous.masterRepeat == 2 && a.gratuitous.masterRefresh == 60_000_000_000)
        #expect(a.gratuitous.arpInterval == 1_000_000 && a.gratuitous.naInterval == 2_000_000)
        #expect(a.multicastGroup == ip("224.0.0.19") && a.downTimerAdverts == 3)
        #expect(a.trackInterfaces == [VRRPTrack(name: "eth1", weight: -30)])
        #expect(a.trackScripts == [VRRPTrack(name: "chk_http")])
        #expect(a.notify.master == VRRPScriptCommand(command: "/etc/keepalived/notify.sh master", user: "root"))
        #expect(a.notify.any == VRRPScriptCommand(command: "/etc/keepalived/notify.sh") && a.notify.smtpAlert)
        let b = v.instances[1]
        #expect(!b.initialMaster && b.priority == 90 && !b.preempt && b.version == 3 && b.advertIntervalCentiseconds == 50)
        #expect(b.downTimerAdverts == 5 && b.sourceAddress == ip("10.0.0.1") && b.unicastPeers == [ip("10.0.0.2")])
        let six = v.instances[2]
        #expect(six.isIPv6 && six.version == 3 && six.priority == 100 && six.multicastGroup == nil)
        #expect(v.scripts.count == 1, "an unused vrrp_script is dropped")
        let s = try #require(v.scripts.first)
        #expect(s.name == "chk_http" && s.script == VRRPScriptCommand(command: "/usr/local/bin/check http", user: "nobody", group: "nogroup"))
        #expect(s.interval == 2_000_000_000 && s.timeout == 3_000_000_000 && s.weight == -20 && s.weightReverse && s.rise == 2 && s.fall == 3)
        #expect(v.syncGroups == [{ var g = VRRPSyncGroupSettings(name: "G", members: ["VI_1", "VI_2"]); g.notify.fault = VRRPScriptCommand(command: "/bin/fault.sh"); return g }()])
        #expect(v.lvsSyncDaemon == { var x = VRRPLVSSyncDaemon(interface: "eth1", instance: "VI_1"); x.syncID = 51; return x }())
        #expect(v.startupDelay == 5_500_000_000)
        #expect(d.contains { $0.severity == .warning && $0.message == "(VI_1) use_vmac not supported by swift-lvs - ignored" })
        #expect(!d.contains { $0.message.contains("not applied") })
    }

    @Test func fallbacksAfterErrors() throws {
        let (c, _) = try parse(instance(" state master\n priority 0\n advert_int 1.5\n authentication {\n auth_type PASS\n auth_pass 123456789\n }\n nopreempt")
            + "vrrp_instance VI_3 {\n interface eth0\n virtual_router_id 53\n version 3\n advert_int 50\n virtual_ipaddress { 10.0.0.3 }\n}\n")
        let a = c.vrrp.instances[0]
        #expect(!a.initialMaster && a.priority == 100 && a.advertIntervalCentiseconds == 200)
        #expect(a.authPassword == Array("12345678".utf8) && !a.preempt)
        #expect(c.vrrp.instances[1].advertIntervalCentiseconds == 4095)
        // Without an instance, the sync daemon runs as master and backup (instance "").
        let (c2, d2) = try parse("global_defs {\n lvs_sync_daemon eth1 id 7\n}\n" + instance(""))
        #expect(c2.vrrp.lvsSyncDaemon == { var x = VRRPLVSSyncDaemon(interface: "eth1", instance: ""); x.syncID = 7; return x }())
        #expect(!d2.contains { $0.severity == .error })
        // The deprecated per-instance interface starts the daemon for that instance.
        let (c3, _) = try parse(instance(" lvs_sync_daemon_interface eth1"))
        #expect(c3.vrrp.lvsSyncDaemon == { var x = VRRPLVSSyncDaemon(interface: "eth1", instance: "VI_1"); x.syncID = 51; return x }())
    }

    /// keepalived's own VRRP samples (Debian's keepalived package) load with their instances;
    /// skipped where the package is not installed.
    @Test func keepalivedsSamplesLoad() throws {
        let dir = "/usr/share/doc/keepalived/samples"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        var loaded = 0
        for name in names.sorted() where name.hasPrefix("keepalived.conf") {
            let text = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
            guard text.contains("vrrp_instance") else { continue }
            let (c, _) = try KeepalivedLoader.parse(text: text, file: name)
            #expect(!c.vrrp.instances.isEmpty, "\(name)")
            loaded += 1
        }
        #expect(loaded > 0)
    }
}
