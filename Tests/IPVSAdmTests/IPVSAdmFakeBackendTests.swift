import Testing
@testable import IPVSAdm
import LVSModel
import LVSTestSupport

/// Name lookups from fixed tables.
struct FakeResolver: IPVSAdmNameResolver {
    var hosts: [String: UInt32] = ["director": 0x0A00_0064, "web1": 0x0A00_000B]
    var services: [String: UInt16] = ["http": 80, "https": 443, "domain": 53]
    var reverseHosts: [IPAddress: String] = [:]

    func resolveHost(_ name: String) -> UInt32? { hosts[name] }
    func resolveService(_ name: String, protocol: String) -> UInt16? { services[name] }
    func hostName(for address: IPAddress) -> String? { reverseHosts[address] }
    func serviceName(for port: UInt16, protocol: String) -> String? {
        services.first(where: { $0.value == port })?.key
    }
}

/// Captured output of one run.
struct RunResult {
    var code: Int32
    var out: String
    var err: String
}

final class Capture {
    var out = ""
    var err = ""
    var input: [String]
    init(input: [String]) { self.input = input }
    var io: IPVSAdmIO {
        IPVSAdmIO(writeOut: { self.out += $0 }, writeErr: { self.err += $0 },
                  readLine: { self.input.isEmpty ? nil : self.input.removeFirst() })
    }
}

/// Runs a command line (words separated by single spaces; argv[0] is `ipvsadm`).
func adm(_ line: String, _ backend: ControlBackend = FakeIPVS(), stdin: [String] = [],
         resolver: IPVSAdmNameResolver = FakeResolver(), program: String = "ipvsadm") -> RunResult {
    let words = line.isEmpty ? [] : line.split(separator: " ").map(String.init)
    return admArgs([program] + words, backend, stdin: stdin, resolver: resolver)
}

func admArgs(_ argv: [String], _ backend: ControlBackend, stdin: [String] = [],
             resolver: IPVSAdmNameResolver = FakeResolver()) -> RunResult {
    let cap = Capture(input: stdin)
    let code = IPVSAdmExecutor(backend: backend, io: cap.io, resolver: resolver).run(argv)
    return RunResult(code: code, out: cap.out, err: cap.err)
}

@Suite struct IPVSAdmFakeBackendTests {
    @Test func fakeBackendKeepsNewestDestinationFirst() throws {
        let fake = FakeIPVS()
        #expect(adm("-A -t 10.0.0.100:80", fake).code == 0)
        #expect(adm("-a -t 10.0.0.100:80 -r 10.0.0.11", fake).code == 0)
        #expect(adm("-a -t 10.0.0.100:80 -r 10.0.0.12 -w 2", fake).code == 0)
        let dests = fake.table.services[0].destinations.map { $0.options.address.description }
        #expect(dests == ["10.0.0.12", "10.0.0.11"])
        #expect(fake.table.services[0].options.scheduler == "wlc")
    }
}
