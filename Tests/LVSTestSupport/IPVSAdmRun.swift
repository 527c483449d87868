import IPVSAdm
import LVSModel

/// Helpers that run ipvsadm command lines against a backend and capture their output (tests only).
/// Name lookups from fixed tables.
public struct FakeResolver: IPVSAdmNameResolver {
    public init() {}
    public var hosts: [String: UInt32] = ["director": 0x0A00_0064, "web1": 0x0A00_000B]
    public var services: [String: UInt16] = ["http": 80, "https": 443, "domain": 53]
    public var reverseHosts: [IPAddress: String] = [:]

    public func resolveHost(_ name: String) -> UInt32? { hosts[name] }
    public func resolveService(_ name: String, protocol: String) -> UInt16? { services[name] }
    public func hostName(for address: IPAddress) -> String? { reverseHosts[address] }
    public func serviceName(for port: UInt16, protocol: String) -> String? {
        services.first(where: { $0.value == port })?.key
    }
}

/// Captured output of one run.
public struct RunResult {
    public var code: Int32
    public var out: String
    public var err: String
}

public final class Capture {
    public var out = ""
    public var err = ""
    public var input: [String]
    public init(input: [String]) { self.input = input }
    public var io: IPVSAdmIO {
        IPVSAdmIO(writeOut: { self.out += $0 }, writeErr: { self.err += $0 },
                  readLine: { self.input.isEmpty ? nil : self.input.removeFirst() })
    }
}

/// Runs a command line (words separated by single spaces; argv[0] is `ipvsadm`).
public func adm(_ line: String, _ backend: ControlBackend = FakeIPVS(), stdin: [String] = [],
         resolver: IPVSAdmNameResolver = FakeResolver(), program: String = "ipvsadm") -> RunResult {
    let words = line.isEmpty ? [] : line.split(separator: " ").map(String.init)
    return admArgs([program] + words, backend, stdin: stdin, resolver: resolver)
}

public func admArgs(_ argv: [String], _ backend: ControlBackend, stdin: [String] = [],
             resolver: IPVSAdmNameResolver = FakeResolver()) -> RunResult {
    let cap = Capture(input: stdin)
    let code = IPVSAdmExecutor(backend: backend, io: cap.io, resolver: resolver).run(argv)
    return RunResult(code: code, out: cap.out, err: cap.err)
}

