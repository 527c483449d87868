import Testing
@testable import LVSControl
import LVSCore

/// An in-memory IPVS table that answers control requests the way the kernel does (errno-wise).
final class FakeIPVS: ControlBackend {
    var table = TableSnapshot()
    var connections: [ConnectionSnapshot] = []
    /// The next request fails with this error.
    var failNext: IPVSError?
    /// Every request fails as if lvsd were not running.
    var unreachable = false
    var requests: [ControlRequest] = []
    static let schedulers: Set<String> = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]

    func index(_ key: ServiceKey) -> Int? {
        table.services.firstIndex { IPVSAdmExecutor.sameService($0.key, key) }
    }

    func execute(_ request: ControlRequest) throws -> ControlResponse {
        if unreachable {
            throw ControlTransportError(message: "cannot reach lvsd at /tmp/none.sock: No such file or directory (is lvsd running?)")
        }
        requests.append(request)
        if let e = failNext {
            failNext = nil
            return .failed(e)
        }
        switch request {
        case .addService(let key, let opts):
            if index(key) != nil { return .failed(.serviceExists) }
            if !Self.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
            if let pe = opts.persistenceEngine, pe != "sip" { return .failed(.schedulerNotFound) }
            table.services.append(ServiceSnapshot(key: key, options: opts))
        case .editService(let key, let opts):
            guard let i = index(key) else { return .failed(.noSuchService) }
            if !Self.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
            table.services[i].options = opts
        case .deleteService(let key):
            guard let i = index(key) else { return .failed(.noSuchService) }
            table.services.remove(at: i)
        case .clear:
            table.services = []
        case .addDestination(let key, let d):
            guard let i = index(key) else { return .failed(.noSuchService) }
            if table.services[i].destinations.contains(where: { $0.options.address == d.address && $0.options.port == d.port }) {
                return .failed(.destinationExists)
            }
            if d.lowerThreshold > d.upperThreshold { return .failed(.outOfRange) }
            table.services[i].destinations.insert(DestinationSnapshot(options: d), at: 0)
        case .editDestination(let key, let d):
            guard let i = index(key) else { return .failed(.noSuchService) }
            guard let j = table.services[i].destinations.firstIndex(where: { $0.options.address == d.address && $0.options.port == d.port }) else {
                return .failed(.noSuchDestination)
            }
            table.services[i].destinations[j].options = d
        case .deleteDestination(let key, let address, let port):
            guard let i = index(key) else { return .failed(.noSuchService) }
            guard let j = table.services[i].destinations.firstIndex(where: { $0.options.address == address && $0.options.port == port }) else {
                return .failed(.noSuchDestination)
            }
            table.services[i].destinations.remove(at: j)
        case .zero(let key):
            if let key {
                guard let i = index(key) else { return .failed(.noSuchService) }
                table.services[i].stats = .init()
            } else {
                for i in table.services.indices { table.services[i].stats = .init() }
            }
        case .setTimeouts(let t):
            if t.tcp != 0 { table.timeouts.tcp = t.tcp }
            if t.tcpFin != 0 { table.timeouts.tcpFin = t.tcpFin }
            if t.udp != 0 { table.timeouts.udp = t.udp }
        case .startDaemon(let d):
            if table.daemons.contains(where: { $0.role == d.role }) { return .failed(.daemonRunning) }
            table.daemons.append(d)
        case .stopDaemon(let role):
            guard let i = table.daemons.firstIndex(where: { $0.role == role }) else { return .failed(.noDaemon) }
            table.daemons.remove(at: i)
        case .snapshot:
            return .snapshot(table)
        case .connections:
            return .connections(connections)
        case .status, .reload:
            return .text("ok")
        case .batch:
            return .failed(.invalid) // batches come one request at a time (the default `execute(batch:)`)
        }
        return .ok
    }
}

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
