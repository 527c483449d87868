import Testing
import LVSTestSupport
@testable import IPVSAdm
import LVSModel

/// `-b mh-sorted` (lvsd's own mh flag, the bit of flag-3): accepted with mh only, listed as
/// ipvsadm lists the bit (`flag-3`), and read back by `-R`.
@Suite struct MhSortedFlagTests {
    static func parse(_ line: String) throws(IPVSAdmFailure) -> IPVSAdmParsed {
        try IPVSAdmParser(program: "ipvsadm", resolver: FakeResolver()).parse(["ipvsadm"] + line.split(separator: " ").map(String.init), readingStdin: false)
    }

    @Test func mhSortedIsTheBitOfFlag3() throws {
        guard case .run(let sorted) = try Self.parse("-A -t 10.0.0.1:80 -s mh -b mh-port,mh-sorted") else { Issue.record("not run"); return }
        #expect(sorted.serviceOptions.flags == [.hashPort, .sortedTable])
        #expect(ServiceFlags.sortedTable == .sched3)
        guard case .run(let flag3) = try Self.parse("-A -t 10.0.0.1:80 -s mh -b flag-3") else { Issue.record("not run"); return }
        #expect(flag3.serviceOptions.flags == .sortedTable)
        // Listed and saved as ipvsadm does (flag-3), which -R reads back to the same flags.
        let fmt = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        let service = ServiceSnapshot(key: ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80), options: sorted.serviceOptions)
        let saved = fmt.serviceEntry(service, format: [.numeric, .rule])
        #expect(saved == "-A -t 10.0.0.1:80 -s mh -b mh-port,flag-3\n")
        guard case .run(let back) = try Self.parse(String(saved.dropLast())) else { Issue.record("not run"); return }
        #expect(back.serviceOptions.flags == sorted.serviceOptions.flags)
    }

    @Test func mhSortedNeedsMh() {
        for line in ["-A -t 10.0.0.1:80 -s sh -b mh-sorted", "-A -t 10.0.0.1:80 -b mh-sorted"] {
            do {
                _ = try Self.parse(line)
                Issue.record("accepted: \(line)")
            } catch {
                #expect(error.stderr == "incompatible scheduler flag `mh-sorted'\n" && error.exitCode == 2, "\(line)")
            }
        }
    }
}
