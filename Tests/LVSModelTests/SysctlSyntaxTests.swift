import Foundation
import LVSModel
import Testing

/// The settings' text forms (lvsd --settings, --set-sysctl, lvsadm daemon sysctl) and their
/// control-protocol wire form.
@Suite struct SysctlSyntaxTests {
    @Test func aFileInSysctlConfSyntax() throws {
        let text = """
        # lvsd run-time settings
        sloppy_tcp = 1
        net.ipv4.vs.expire_nodest_conn=1

        ; a comment the sysctl.conf way
        \tconn_reuse_mode =  2\t
        net/ipv4/vs/drop_packet = 3
        """
        let list = try SysctlSyntax.file(text, path: "/etc/lvsd/sysctl.conf")
        #expect(list == [SysctlAssignment(.sloppyTCP, 1), SysctlAssignment(.expireNodestConn, 1),
                         SysctlAssignment(.connReuseMode, 2), SysctlAssignment(.dropPacket, 3)])
    }

    @Test func fileErrorsNameTheFileAndLine() {
        let cases: [(String, String)] = [
            ("sloppy_tcp = 1\nsloppy_tcp = 2\n", "/x.conf:2: sloppy_tcp: invalid value `2' (an integer from 0 to 1)"),
            ("# ok\n\nno_such = 1\n", "/x.conf:3: no_such: unknown setting"),
            ("nat_icmp_send = 1", "/x.conf:1: nat_icmp_send: a kernel setting lvsd does not have"),
            ("net.ipv4.vs.schedule_icmp = 1", "/x.conf:1: net.ipv4.vs.schedule_icmp: a kernel setting lvsd does not have"),
            ("sloppy_tcp\n", "/x.conf:1: `sloppy_tcp': expected NAME=VALUE"),
            ("conn_reuse_mode = one", "/x.conf:1: conn_reuse_mode: invalid value `one'"),
            ("= 1", "/x.conf:1: `= 1': expected NAME=VALUE"),
        ]
        for (text, message) in cases {
            do {
                _ = try SysctlSyntax.file(text, path: "/x.conf")
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.description.hasPrefix(message), "\(text): \(error.description)")
            }
        }
    }

    @Test func optionAssignments() throws {
        #expect(try SysctlSyntax.assignment("sloppy_sctp=1") == SysctlAssignment(.sloppySCTP, 1))
        #expect(try SysctlSyntax.assignment("net.ipv4.vs.am_droprate = 50") == SysctlAssignment(.amDroprate, 50))
        #expect(throws: SysctlError.self) { try SysctlSyntax.assignment("am_droprate=1") }
        #expect(throws: SysctlError.self) { try SysctlSyntax.assignment("secure_tcp=-1") }
        #expect(throws: SysctlError.self) { try SysctlSyntax.assignment("sync_retries=4") }
        #expect(try SysctlSyntax.setting("net.ipv4.vs.expire_quiescent_template") == .expireQuiescentTemplate)
    }

    @Test func everySettingHasAUniqueNameAndItsDefaultInRange() {
        #expect(Set(Sysctl.allCases.map(\.name)).count == Sysctl.allCases.count)
        for s in Sysctl.allCases {
            #expect(s.range.contains(s.defaultValue), "\(s.name)")
            #expect(Sysctl(name: s.name) == s && Sysctl(name: "net.ipv4.vs." + s.name) == s)
            #expect(!Sysctl.unsupportedNames.contains(s.name))
        }
        let d = SysctlValues()
        #expect(d[.connReuseMode] == 1 && d[.sloppyTCP] == 0 && d[.dropEntry] == 1 && d[.secureTCP] == 1)
    }

    @Test func wireRoundTrips() throws {
        let request = ControlRequest.sysctl([SysctlAssignment(.sloppyTCP, 1)])
        let line = try ControlProtocolWireTests.json(request)
        #expect(line == #"{"request":"sysctl","sysctls":[{"name":"sloppy_tcp","value":1}],"version":1}"#)
        #expect(try JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8)) == request)
        #expect(try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"request":"sysctl","sysctls":[],"version":1}"#.utf8)) == .sysctl([]))

        var values = SysctlValues()
        values[.expireNodestConn] = 1
        let answer = ControlResponse.sysctls(values)
        let text = try ControlProtocolWireTests.json(answer)
        #expect(text.hasPrefix(#"{"answer":"sysctls","sysctls":[{"name":"am_droprate","value":10},"#))
        #expect(try JSONDecoder().decode(ControlResponse.self, from: Data(text.utf8)) == answer)
        // An unknown name, or an answer without every setting, is refused.
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"request":"sysctl","sysctls":[{"name":"nope","value":1}],"version":1}"#.utf8))
        }
        #expect(throws: (any Error).self) {
            try JSONDecoder().decode(ControlResponse.self, from: Data(#"{"answer":"sysctls","sysctls":[{"name":"sloppy_tcp","value":1}],"version":1}"#.utf8))
        }
        // Another version is refused as every request is.
        #expect(throws: ControlProtocolMismatch.self) {
            try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"request":"sysctl","sysctls":[],"version":2}"#.utf8))
        }
    }
}
