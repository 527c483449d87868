import Foundation
import Testing
@testable import KeepalivedConfig
import LVSModel

private func parse(_ text: String) throws -> (KeepalivedConfig, [KeepalivedDiagnostic]) {
    try KeepalivedLoader.parse(text: text, file: "keepalived.conf")
}

private func messages(_ d: [KeepalivedDiagnostic]) -> [String] { d.map(\.description) }

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

@Suite struct KeepalivedParserTests {
    static let full = """
    ! Configuration File for keepalived
    global_defs {
       router_id LVS_DEVEL   # trailing comment
       lvs_timeouts tcp 7200 tcpfin 30 udp 60
       lvs_flush
       lvs_id OLD
       notification_email { ops@example.com }
    }
    virtual_server 192.168.1.100 80 {
        delay_loop 6
        lb_algo wrr
        lb_kind DR
        persistence_timeout 50
        persistence_granularity 255.255.255.0
        protocol tcp
        connect_timeout 3
        retry 2
        delay_before_retry 2.5
        inhibit_on_failure
        quorum 2
        hysteresis 1
        quorum_up "/usr/local/bin/up.sh VIP"
        quorum_down /usr/local/bin/down.sh
        sorry_server 10.0.0.99 80
        sorry_server_inhibit
        virtualhost www.example.com
        real_server 10.0.0.1 80 {
            weight 3
            uthreshold 100
            lthreshold 10
            notify_up "/bin/echo up"
            notify_down /bin/down
            TCP_CHECK {
                connect_port 8080
                connect_timeout 2
                bindto 10.0.0.254
            }
            HTTP_GET {
                url {
                    path /health
                    status_code 200 301-302
                    digest 9B3A0C85A887A256D6939DA88AABD8CD
                }
                url { path /other }
                nb_get_retry 4
            }
        }
        real_server 10.0.0.2 81 {
            MISC_CHECK {
                misc_path "/usr/bin/check 10.0.0.2"
                misc_timeout 5
                misc_dynamic
            }
        }
    }
    """

    @Test func everyCommonKeyword() throws {
        let (c, d) = try parse(Self.full)
        #expect(c.globals.routerID == "LVS_DEVEL")
        #expect(c.globals.lvsTimeouts == IPVSTimeouts(tcp: 7200, tcpFin: 30, udp: 60))
        #expect(c.globals.lvsFlush)
        #expect(c.virtualServers.count == 1)
        let vs = c.virtualServers[0]
        #expect(vs.address == .address(ip("192.168.1.100"), port: 80))
        #expect(vs.proto == .tcp && vs.scheduler == "wrr" && vs.method.method == .directRoute)
        #expect(vs.persistenceTimeout == 50 && vs.persistenceGranularity == 0xFFFF_FF00)
        #expect(vs.delayLoop == .seconds(6) && vs.connectTimeout == .seconds(3))
        #expect(vs.retry == 2 && vs.delayBeforeRetry == .milliseconds(2500))
        #expect(vs.inhibitOnFailure && vs.quorum == 2 && vs.hysteresis == 1)
        #expect(vs.quorumUp == "/usr/local/bin/up.sh VIP" && vs.quorumDown == "/usr/local/bin/down.sh")
        #expect(vs.sorryServer?.address == ip("10.0.0.99") && vs.sorryServerInhibit)
        let rs1 = vs.realServers[0], rs2 = vs.realServers[1]
        #expect(rs1.weight == 3 && rs1.upperThreshold == 100 && rs1.lowerThreshold == 10 && rs1.inhibitOnFailure)
        #expect(rs1.notifyUp == "/bin/echo up" && rs1.notifyDown == "/bin/down")
        #expect(rs1.checkers.count == 2)
        let tcp = rs1.checkers[0]
        #expect(tcp.kind == .tcp && tcp.connectPort == 8080 && tcp.bindTo == ip("10.0.0.254"))
        #expect(tcp.timing.connectTimeout == .seconds(2) && tcp.timing.retry == 2 && tcp.timing.delayLoop == .seconds(6))
        let http = rs1.checkers[1]
        #expect(http.kind == .http && http.urls.count == 2 && http.timing.retry == 4)
        #expect(http.urls[0].digest == "9b3a0c85a887a256d6939da88aabd8cd")
        #expect(http.urls[0].accepts(status: 301) && !http.urls[0].accepts(status: 204))
        #expect(http.urls[1].accepts(status: 204))
        #expect(http.virtualhost == "www.example.com")
        // DR: the port is reset to the VS port, with a warning.
        #expect(rs2.port == 80 && rs2.weight == 1)
        let misc = rs2.checkers[0]
        #expect(misc.miscPath == "/usr/bin/check 10.0.0.2" && misc.miscTimeout == .seconds(5) && misc.miscDynamic)
        #expect(misc.timing.retry == 2) // VS retry overrides the MISC default of 0
        let m = messages(d)
        #expect(m.contains { $0.contains("obsolete keyword 'lvs_id'") })
        #expect(m.contains { $0.contains("nb_get_retry is deprecated") })
        #expect(m.contains { $0.contains("ports don't match - resetting") })
        #expect(!d.contains { $0.severity == .error }, "\(m)")
    }

    @Test func defaultsAndWarnings() throws {
        let (c, d) = try parse("""
        virtual_server 10.1.1.1 53 {
            real_server 10.2.2.2 53 {
                TCP_CHECK { }
                MISC_CHECK { misc_path /bin/true }
                HTTP_GET { url { path / } }
            }
        }
        """)
        let vs = c.virtualServers[0]
        #expect(vs.proto == .udp && vs.scheduler == "wlc" && vs.method.method == .masquerade)
        #expect(vs.delayLoop == .seconds(60) && vs.quorum == 1 && vs.hysteresis == 0)
        let t = vs.realServers[0].checkers
        #expect(t[0].timing.retry == 1 && t[0].timing.delayBeforeRetry == .seconds(1) && t[0].timing.connectTimeout == .seconds(5))
        #expect(t[0].timing.warmup == .seconds(60) && !t[0].timing.alpha)
        #expect(t[1].timing.retry == 0 && t[1].miscTimeout == .seconds(60))
        #expect(t[2].timing.retry == 1 && t[2].timing.delayBeforeRetry == .seconds(3))
        let m = messages(d)
        #expect(m.contains("keepalived.conf:1: warning: virtual server 10.1.1.1:53: no protocol set - defaulting to UDP"))
        #expect(m.contains { $0.contains("no scheduler set - defaulting to wlc") })
        #expect(m.contains { $0.contains("no forwarding method set, setting default NAT") })
    }

    @Test func unknownKeywordErrorsNameFileLineAndBlock() throws {
        let (c, d) = try parse("""
        virtual_server 10.1.1.1 80 {
            protocol TCP
            lb_algoo rr
            lb_kind dr
            Weight 3
            real_server 10.2.2.2 80 {
                lb_kind DR
                TCP_CHECK { nb_get_retry 3
                }
            }
        }
        ; Common Configuration Block
        """)
        let m = messages(d)
        #expect(m.contains("keepalived.conf:3: unknown keyword 'lb_algoo' in virtual_server"))
        #expect(m.contains("keepalived.conf:4: unknown [dr] routing method for virtual server"))
        #expect(m.contains("keepalived.conf:5: unknown keyword 'Weight' in virtual_server"))
        #expect(m.contains("keepalived.conf:7: unknown keyword 'lb_kind' in real_server"))
        #expect(m.contains { $0.hasPrefix("keepalived.conf:8: warning: unknown keyword 'nb_get_retry' in TCP_CHECK") })
        #expect(m.contains("keepalived.conf:12: unknown keyword ';' in top level"))
        #expect(c.virtualServers[0].method.method == .masquerade)
        #expect(c.virtualServers[0].realServers[0].checkers[0].timing.retry == 1)
    }

    @Test func lexicalRules() throws {
        let (c, d) = try parse("virtual_server 10.0.0.1 80 {\r\n  protocol TCP # c1\r\n  lvs_sched rr ! c2\r\n lvs_method DR\r\n"
            + "  virtualhost \"a#b!c\"\r\n  real_server 10.0.0.2 80 { weight 2 }\r\n  real_server 10.0.0.3 { TCP_CHECK {} }\r\n"
            + "  real_server 10.0.0.4 80\r\n  {\r\n weight 0 }\r\n}\r\n")
        let vs = try #require(c.virtualServers.first)
        #expect(vs.virtualhost == "a#b!c")
        #expect(vs.realServers.map(\.weight) == [2, 1, 0])
        #expect(vs.realServers[1].port == 80 && vs.realServers[1].checkers.count == 1)
        #expect(!d.contains { $0.severity == .error }, "\(messages(d))")
        // Extra tokens are dropped silently; tokens split only on whitespace.
        let (c2, _) = try parse("virtual_server 10.0.0.1 80 {\nprotocol TCP\ndelay_loop 2.5 ; lb_algo wrr\nreal_server 10.0.0.2 80 {\n}\n}\n")
        #expect(c2.virtualServers[0].delayLoop == .milliseconds(2500) && c2.virtualServers[0].scheduler == "wlc")
    }

    @Test func oldAndNewNames() throws {
        for (sched, method) in [("lb_algo", "lb_kind"), ("lvs_sched", "lvs_method")] {
            let (c, _) = try parse("virtual_server 10.0.0.1 80 {\n\(sched) sh\nsh-port\nmh-port\n\(method) DR\nprotocol TCP\nreal_server 10.0.0.2 80 {\nHTTP_GET {\nnb_get_retry 5\nurl { path / }\n}\n}\n}\n")
            let vs = c.virtualServers[0]
            #expect(vs.scheduler == "sh" && vs.method.method == .directRoute && vs.schedulerFlags == .hashPort)
            #expect(vs.realServers[0].checkers[0].timing.retry == 5)
        }
    }

    @Test func fwmarkGroupAndSorry() throws {
        let (c, d) = try parse("""
        virtual_server_group WEB {
            192.168.1.10-12 80
            192.168.2.0/30 443
            fwmark 7
            2001:db8::1 80
        }
        virtual_server group WEB {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.2 80 { }
        }
        virtual_server fwmark 5 {
            protocol TCP
            lvs_method DR
            persistence_timeout
            sorry_server 10.0.0.9 8080
            real_server 10.0.0.2 80 { TCP_CHECK { connect_port 80 } }
            real_server 10.0.0.2 {
            }
        }
        virtual_server 10.9.9.9 0 {
            protocol TCP
            lvs_method DR
            real_server 10.0.0.5 0 { }
        }
        """)
        let g = try #require(c.groups["WEB"])
        #expect(g.entries.count == 3 + 4 + 1 + 1)
        #expect(g.entries.first == .address(ip("192.168.1.10"), port: 80))
        #expect(g.entries.contains(.address(ip("192.168.2.3"), port: 443)))
        #expect(g.entries.contains(.fwmark(7, ipv6: false)))
        #expect(c.serviceKeys(of: c.virtualServers[0]).count == 9)
        let fw = c.virtualServers[1]
        #expect(fw.persistenceTimeout == 360 && fw.realServers.count == 1 && fw.realServers[0].port == 0)
        #expect(fw.sorryServer?.port == 0)
        #expect(c.serviceKeys(of: fw) == [ServiceKey(fwmark: 5, ipv6: false)])
        #expect(c.virtualServers[2].persistenceTimeout == 360)
        let m = messages(d)
        #expect(m.contains { $0.contains("protocol specified for fwmark - protocol will be ignored") })
        #expect(m.contains { $0.contains("has port specified - clearing") })
        #expect(m.contains { $0.contains("is duplicated - removing second rs") })
        #expect(m.contains { $0.contains("zero port only valid for persistent services") })
    }

    @Test func quorumHysteresisClampAndEmptyVS() throws {
        let (c, d) = try parse("""
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            quorum 5
            hysteresis 9
            real_server 10.0.0.2 80 { weight 1 }
            real_server 10.0.0.3 80 { weight 1 }
        }
        virtual_server 10.0.0.1 81 {
            protocol TCP
        }
        """)
        #expect(c.virtualServers.count == 1)
        #expect(c.virtualServers[0].quorum == 2 && c.virtualServers[0].hysteresis == 1)
        let m = messages(d)
        #expect(m.contains { $0.contains("reducing quorum to 2") })
        #expect(m.contains { $0.contains("setting hysteresis to 1") })
        #expect(m.contains { $0.contains("has no real servers - removing") })
    }

    @Test func invalidValues() throws {
        let (c, d) = try parse("""
        virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_algo RR
            delay_loop 0x10
            real_server server1.example 80 { }
            real_server 10.0.0.2 80 {
                weight 1.5
                HTTP_GET { url { path / status_code 200 } }
                HTTP_GET { url { path /x
                status_code 600 } }
                SSL_GET { url { path / } }
                SMTP_CHECK { helo_name x }
                HTTP_GET { url { digest abc } }
            }
        }
        """)
        let rs = c.virtualServers[0].realServers[0]
        #expect(rs.weight == 1)
        #expect(rs.checkers.map(\.kind) == [.http, .http, .ssl, .unsupported("SMTP_CHECK")])
        #expect(c.virtualServers[0].delayLoop == .seconds(60))
        let m = messages(d)
        #expect(m.contains("keepalived.conf:3: Invalid lvs_scheduler 'RR' - ignoring"))
        #expect(m.contains("keepalived.conf:4: invalid number '0x10' for 'delay_loop'"))
        #expect(m.contains("keepalived.conf:5: Invalid real server ip address/port server1.example/80 - skipping"))
        #expect(m.contains("keepalived.conf:7: invalid number '1.5' for 'weight' - truncated to 1"))
        #expect(m.contains("keepalived.conf:10: Invalid HTTP_GET status code '600'"))
        #expect(!m.contains { $0.contains("SSL_GET") })
        #expect(m.contains { $0.contains("SMTP_CHECK is not supported") })
        #expect(m.contains { $0.contains("url without path") })
    }

    @Test func missingParameterIsFatal() {
        #expect(throws: KeepalivedLoadError.self) {
            try parse("virtual_server 10.0.0.1 80 {\nlb_algo\n}\n")
        }
    }

    /// keepalived 2.2.7 (lib/parser.c) exits 2 when a keyword's value is not on its line; the
    /// message names the file and line and uses keepalived's wording, also inside the blocks
    /// we parse but do not apply (the value on the next line is no excuse).
    @Test func missingParameterOnItsLineIsFatalWithKeepalivedsMessage() {
        func fatal(_ text: String) -> KeepalivedLoadError? {
            do { _ = try parse(text); return nil } catch let e as KeepalivedLoadError { return e } catch { return nil }
        }
        let vrrp = fatal("""
        global_defs {
            router_id e2e
        }
        vrrp_instance VI_1 {
            state MASTER
            lvs_sync_daemon_interface
                eth1
            virtual_router_id 51
        }
        virtual_server 10.0.0.1 80 { protocol TCP
        real_server 10.0.0.2 80 { } }
        """)
        #expect(vrrp?.message == "keepalived.conf:6: *** Configuration line starting `lvs_sync_daemon_interface` is missing a parameter after keyword `lvs_sync_daemon_interface` at word position 2")
        let global = fatal("global_defs {\n    vrrp_mcast_group4\n    lvs_sync_daemon\n}\n")
        #expect(global?.message == "keepalived.conf:2: *** Configuration line starting `vrrp_mcast_group4` is missing a parameter after keyword `vrrp_mcast_group4` at word position 2")
        #expect(global?.diagnostics.map(\.description).contains("keepalived.conf:3: *** Configuration line starting `lvs_sync_daemon` is missing a parameter after keyword `lvs_sync_daemon` at word position 2") == true)
        let vs = fatal("virtual_server 10.0.0.1 80 {\n    lb_algo\n}\n")
        #expect(vs?.message == "keepalived.conf:2: *** Configuration line starting `lb_algo` is missing a parameter after keyword `lb_algo` at word position 2")
        #expect(KeepalivedParser.missingParameterMessage(words: ["a", "b"], index: 2) == "*** Configuration line starting `a` is missing a parameter after keyword `b` at word position 3")
        // Keywords without a value are not affected.
        #expect(fatal("vrrp_instance VI_1 {\n    nopreempt\n    interface eth0\n}\n") == nil)
    }

    @Test func vrrpBlocksAreApplied() throws {
        let (c, d) = try parse("""
        vrrp_script chk { script "/bin/true" }
        vrrp_sync_group G { group { VI_1 } }
        vrrp_instance VI_1 {
            state MASTER
            interface eth0
            virtual_router_id 51
            virtual_ipaddress {
                192.168.1.100/32 dev eth0
            }
            track_script { chk }
        }
        virtual_server 10.0.0.1 80 { protocol TCP
        real_server 10.0.0.2 80 { } }
        """)
        #expect(c.ignoredBlocks.isEmpty)
        #expect(!d.contains { $0.message.contains("not applied") })
        #expect(c.vrrp.instances.map(\.name) == ["VI_1"])
        #expect(c.vrrp.instances[0].trackScripts.map(\.name) == ["chk"])
        #expect(c.vrrp.scripts.map(\.name) == ["chk"] && c.vrrp.syncGroups.map(\.members) == [["VI_1"]])
        // keepalived 2.2.7 -t: a sync group of one instance is a configuration error (exit 5).
        #expect(messages(d).contains("keepalived.conf:2: Sync group G has only 1 virtual router(s) - this probably isn't what you want"))
        #expect(c.virtualServers.count == 1)
    }

    @Test func includesWithGlobsConditionalsAndParameters() throws {
        let dir = NSTemporaryDirectory() + "ka-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/conf.d/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        $PORT=8080
        global_defs { router_id R1 }
        include conf.d/*.conf
        include conf.d/missing-*.conf
        @lb1 virtual_server 10.0.0.50 ${PORT} {
        @^lb1 virtual_server 10.0.0.51 ${PORT} {
          protocol TCP
          real_server 10.0.0.2 $PORT { }
        }
        """.write(toFile: dir + "/keepalived.conf", atomically: true, encoding: .utf8)
        try "include sub/{a,b}.inc\n".write(toFile: dir + "/conf.d/10-web.conf", atomically: true, encoding: .utf8)
        try "virtual_server 10.0.0.1 80 {\nprotocol TCP\nreal_server 10.0.0.2 80 { }\n}\n".write(toFile: dir + "/conf.d/sub/a.inc", atomically: true, encoding: .utf8)
        try "virtual_server 10.0.0.1 443 {\nprotocol TCP\nreal_server 10.0.0.2 443 {\nbogus\n}\n}\n".write(toFile: dir + "/conf.d/sub/b.inc", atomically: true, encoding: .utf8)
        try "virtual_server 10.0.0.1 22 {\nprotocol TCP\nreal_server 10.0.0.2 22 { }\n}\n".write(toFile: dir + "/conf.d/20-ssh.conf", atomically: true, encoding: .utf8)
        let (c, d) = try KeepalivedLoader.load(path: dir + "/keepalived.conf", configID: "lb1")
        #expect(c.globals.routerID == "R1")
        #expect(c.virtualServers.map(\.address) == [
            .address(ip("10.0.0.1"), port: 80), .address(ip("10.0.0.1"), port: 443),
            .address(ip("10.0.0.1"), port: 22), .address(ip("10.0.0.50"), port: 8080),
        ])
        #expect(messages(d).contains("\(dir)/conf.d/sub/b.inc:4: unknown keyword 'bogus' in real_server"))
        let (c2, _) = try KeepalivedLoader.load(path: dir + "/keepalived.conf", configID: "lb2")
        #expect(c2.virtualServers.last?.address == .address(ip("10.0.0.51"), port: 8080))
        #expect(throws: KeepalivedLoadError.self) { try KeepalivedLoader.load(path: dir + "/nope.conf") }
    }

    @Test func shellWordsAndTimers() {
        #expect(KeepalivedLexer.shellWords("\"/bin/x a\" root") == ["/bin/x a", "root"])
        #expect(KeepalivedLexer.shellWords("'a b'\\tc \\x41") == ["a b\tc", "A"])
        #expect(KeepalivedParser.parseTimer("0.001") == 1000)
        #expect(KeepalivedParser.parseTimer("3") == 3_000_000)
        #expect(KeepalivedParser.parseTimer("1.0000005") == 1_000_001)
        #expect(KeepalivedParser.parseTimer("-1") == nil && KeepalivedParser.parseTimer("1e3") == nil)
    }
}
