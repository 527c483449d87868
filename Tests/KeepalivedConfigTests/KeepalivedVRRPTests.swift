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
struct KeepalivedVerdict: CustomStringConvertible, Sendable {
    var input: String
    var messages: [String]
    var exit: Int32
    var description: String { messages.first ?? input }
}

/// The table of verdicts, checks/e2e/keepalived-vrrp-verdicts.txt (the e2e test
/// test_keepalived_vrrp_verdicts.sh checks that keepalived still gives them).
let keepalivedVRRPVerdicts: [KeepalivedVerdict] = {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../checks/e2e/keepalived-vrrp-verdicts.txt").standardized.path
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
    var out: [KeepalivedVerdict] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("=== ") {
            out.append(KeepalivedVerdict(input: "", messages: [], exit: Int32(line.dropFirst(4)) ?? -1))
        } else if out.isEmpty {
            continue
        } else if line.hasPrefix(">>> ") {
            out[out.count - 1].messages.append(String(line.dropFirst(4)))
        } else {
            out[out.count - 1].input += line + "\n"
        }
    }
    return out
}()

@Suite struct KeepalivedVRRPTests {
    /// Each input gives keepalived's messages (ours contain its text; keepalived's capital
    /// "Unknown keyword" is our "unknown keyword … in BLOCK") and its exit status.
    @Test func theVerdictTableIsThere() {
        #expect(keepalivedVRRPVerdicts.count > 50)
        #expect(keepalivedVRRPVerdicts.allSatisfy { $0.exit >= 0 && !$0.input.isEmpty })
    }

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
            preempt_delay 2.5
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
        #expect(a.preemptDelay == 0)
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
        #expect(six.isIPv6 && six.version == 3 && six.priority == 100 && six.multicastGroup == nil && six.preemptDelay == 2_500_000_000)
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

    /// lower_prio_no_advert and higher_prio_send_advert: the instance's word over the global
    /// one, a bare keyword means true, and neither is warned "not supported" any more.
    @Test func lowerAndHigherPriorityAdvertOptions() throws {
        let (c, d) = try parse("global_defs {\n vrrp_lower_prio_no_advert\n vrrp_higher_prio_send_advert yes\n}\n"
            + instance(" higher_prio_send_advert off")
            + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress { 10.0.0.2 }\n lower_prio_no_advert false\n}\n")
        let a = c.vrrp.instances[0], b = c.vrrp.instances[1]
        #expect(a.lowerPriorityNoAdvert && !a.higherPrioritySendAdvert)
        #expect(!b.lowerPriorityNoAdvert && b.higherPrioritySendAdvert)
        #expect(!d.contains { $0.message.contains("not supported") }, "\(d)")
        let (plain, _) = try parse(instance(""))
        #expect(!plain.vrrp.instances[0].lowerPriorityNoAdvert && !plain.vrrp.instances[0].higherPrioritySendAdvert)
    }

    @Test func notifyDeletedWithAndWithoutAScript() throws {
        let (c, d) = try parse(instance(" notify_deleted /bin/deleted.sh\n notify_deleted /bin/other.sh")
            + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress { 10.0.0.2 }\n notify_deleted\n}\n")
        let a = c.vrrp.instances[0].notify, b = c.vrrp.instances[1].notify
        #expect(a.notifyDeleted && a.deleted == VRRPScriptCommand(command: "/bin/deleted.sh"))
        #expect(b.notifyDeleted && b.deleted == nil)
        #expect(d.contains { $0.message == "(VI_1) notify_deleted already specified - ignoring /bin/other.sh" }, "\(d)")
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

    /// keepalived's own VRRP samples (Debian's keepalived package) load with every instance they
    /// define; skipped where the package is not installed.
    @Test func keepalivedsSamplesLoad() throws {
        let dir = "/usr/share/doc/keepalived/samples"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        var loaded = 0
        for name in names.sorted() where name.hasPrefix("keepalived.conf") {
            let text = try String(contentsOfFile: dir + "/" + name, encoding: .utf8)
            guard text.contains("vrrp_instance") else { continue }
            let (c, _) = try KeepalivedLoader.parse(text: text, file: name)
            let defined = text.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("vrrp_instance ") }.count
            #expect(c.vrrp.instances.count == defined && defined > 0, "\(name)")
            loaded += 1
        }
        #expect(loaded > 0)
    }
}

