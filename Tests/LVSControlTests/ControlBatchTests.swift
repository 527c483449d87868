import Foundation
import Testing
@testable import LVSControl
import LVSCore
import LVSModel
@testable import IPVSAdm
@testable import KeepalivedConfig
@testable import LVSHealth
import LVSTestSupport

/// An engine behind lvsd's change notification, counting what lvsd would do after each change:
/// `notifications` is the number of snapshots its kernel guard takes (and the most `nft` runs).
// @unchecked Sendable: one test at a time drives it; the health monitor's actor writes the counts
// while the test awaits it, and the test reads them only after that await returns.
private final class CountingDirector: @unchecked Sendable {
    let engine = Engine(configuration: { var c = EngineConfiguration(); c.connectionCapacity = 1024; return c }())
    var notifications = 0
    /// Requests that reached the engine: single ones and `.batch` ones.
    var single = 0
    var batches = 0
    /// A new backend over this director (each one may be handed to another isolation domain).
    var backend: ChangeNotifyingBackend { ChangeNotifyingBackend(execute: { [unowned self] request in
        if case .batch = request { batches += 1 } else { single += 1 }
        return EngineControl.execute(request, on: engine, now: 0)
    }, onChange: { [unowned self] in notifications += 1 }) }

    var destinationCount: Int { engine.snapshot().services.reduce(0) { $0 + $1.destinations.count } }
    var weights: Set<Int32> { Set(engine.snapshot().services.flatMap { $0.destinations.map(\.options.weight) }) }
}

private let key = ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80)
private func dest(_ last: Int, weight: Int32 = 1) -> DestinationOptions {
    DestinationOptions(address: IPAddress("10.0.1.\(last)")!, port: 80, weight: weight)
}

/// `services` x `reals` as ipvsadm-save lines.
private func rules(services: Int, reals: Int, weight: Int = 1) -> [String] {
    var lines: [String] = []
    for s in 1...services {
        lines.append("-A -t 10.99.0.\(s):80 -s wrr")
        for r in 1...reals { lines.append("-a -t 10.99.0.\(s):80 -r 10.98.\(s).\(r):80 -g -w \(weight)") }
    }
    return lines
}

/// The same table as a keepalived.conf (no checkers: every real server is up at once).
private func keepalived(services: Int, reals: Int, weight: Int) throws -> KeepalivedConfig {
    var text = ""
    for s in 1...services {
        text += "virtual_server 10.99.0.\(s) 80 {\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n"
        for r in 1...reals { text += "    real_server 10.98.\(s).\(r) 80 {\n        weight \(weight)\n    }\n" }
        text += "}\n"
    }
    return try KeepalivedLoader.parse(text: text).0
}

private func quietEnvironment() -> HealthEnvironment {
    HealthEnvironment(probe: { _ in .success }, sleep: { _ in try await Task.sleep(for: .seconds(3600)) },
                      runScript: { _ in }, jitter: { _ in .zero })
}

@Suite struct ControlBatchTests {
    @Test func requestsApplyInOrderAndFailuresAreAnsweredInPlace() throws {
        let d = CountingDirector()
        let batch = ControlBatch([.addService(key, ServiceOptions(scheduler: "rr")), .addDestination(key, dest(2)),
                                  .addDestination(key, dest(2)), .addDestination(key, dest(3))])
        let answers = try d.backend.execute(batch: batch)
        #expect(answers == [.ok, .ok, .failed(.destinationExists), .ok])
        #expect(d.destinationCount == 2) // nothing rolled back, the request after the failure applied
        #expect(ControlBatch.firstFailure(answers)?.index == 2)
        #expect(d.notifications == 1 && d.batches == 1 && d.single == 0)
    }

    @Test func stopAtFirstFailureEndsTheBatchThere() throws {
        let d = CountingDirector()
        let batch = ControlBatch([.addService(key, ServiceOptions(scheduler: "rr")), .addDestination(key, dest(2)),
                                  .addDestination(key, dest(2)), .addDestination(key, dest(3))], stopAtFirstFailure: true)
        let answers = try d.backend.execute(batch: batch)
        #expect(answers == [.ok, .ok, .failed(.destinationExists)])
        #expect(d.destinationCount == 1) // the changes before the failure stay, none after it ran
        #expect(d.notifications == 1)
    }

    @Test func aBatchHoldsTableChangesOnly() throws {
        let d = CountingDirector()
        let answers = try d.backend.execute(batch: ControlBatch([.snapshot, .status, .batch(ControlBatch([.clear])),
                                                                 .startDaemon(SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 0, maxLength: 1472, group: "224.0.0.81", port: 8848, ttl: 1))]))
        #expect(answers == Array(repeating: .failed(.invalid), count: 4))
        #expect(d.notifications == 0) // nothing changed: lvsd's guard is not touched
    }

    @Test func aBatchOfNoChangeDoesNotNotify() throws {
        let d = CountingDirector()
        _ = try d.backend.execute(batch: ControlBatch([.deleteService(key), .zero(nil)]))
        #expect(d.notifications == 0)
    }

    @Test func theBatchGoesOnTheWireAsOneRequest() throws {
        let batch = ControlBatch([.clear, .addService(key, ServiceOptions(scheduler: "rr"))], stopAtFirstFailure: true)
        let request = ControlRequest.batch(batch)
        let decoded = try JSONDecoder().decode(ControlRequest.self, from: JSONEncoder().encode(request))
        #expect(decoded == request)
        let answer = ControlResponse.batch([.ok, .failed(.serviceExists)])
        #expect(try JSONDecoder().decode(ControlResponse.self, from: JSONEncoder().encode(answer)) == answer)
    }

    @Test func restoreOfAThousandLinesIsOneBatch() {
        let d = CountingDirector()
        let lines = rules(services: 10, reals: 100)
        let r = admArgs(["ipvsadm", "-R"], d.backend, stdin: lines)
        #expect(r.code == 0 && r.err == "")
        #expect(d.destinationCount == 1000)
        // One request to lvsd, one snapshot there and at most one nft run, instead of 1,010 of each.
        #expect(d.batches == 1 && d.single == 0 && d.notifications == 1)
    }

    @Test func restoreWritesEachFailureInItsPlaceAndOtherLinesSplitTheBatch() {
        let d = CountingDirector()
        let r = admArgs(["ipvsadm", "-R"], d.backend, stdin: [
            "-A -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.0.1.2", "-a -t 10.0.0.1:80 -r 10.0.1.2",
            "-a -t 10.0.0.9:80 -r 10.0.1.3", "-L -n --timeout", "-a -t 10.0.0.1:80 -r 10.0.1.4",
        ])
        #expect(r.err == "Destination already exists\nService not defined\n")
        #expect(r.out.hasPrefix("Timeout (tcp tcpfin udp)"))
        #expect(r.code == 0) // the last line's
        #expect(d.destinationCount == 2)
        // The listing line sends what gathered before it: two batches, one listing.
        #expect(d.batches == 2 && d.single == 1 && d.notifications == 2)
    }

    @Test func rulesFileStopsAtTheFailingLine() {
        let d = CountingDirector()
        var err = ""
        let io = IPVSAdmIO(writeOut: { _ in }, writeErr: { err += $0 }, readLine: { nil })
        let executor = IPVSAdmExecutor(backend: d.backend, io: io, resolver: NumericOnlyResolver())
        let lines = ["-A -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.0.1.2", "-a -t 10.0.0.1:80 -r 10.0.1.2",
                     "-a -t 10.0.0.1:80 -r 10.0.1.3"].map { $0.split(separator: " ").map(String.init) }
        let failed = executor.runStoppingAtFailure(lines, program: "lvsd")
        #expect(failed?.line == 2 && failed?.code == 255)
        #expect(err == "Destination already exists\n")
        #expect(d.destinationCount == 1 && d.batches == 1)

        err = ""
        let d2 = CountingDirector()
        let executor2 = IPVSAdmExecutor(backend: d2.backend, io: io, resolver: NumericOnlyResolver())
        let parseError = ["-A -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.0.1.2", "-a -t 10.0.0.1:80 --bogus",
                          "-a -t 10.0.0.1:80 -r 10.0.1.3"].map { $0.split(separator: " ").map(String.init) }
        let failed2 = executor2.runStoppingAtFailure(parseError, program: "lvsd")
        // The exit code a run of that line alone gives.
        #expect(failed2?.line == 2 && failed2?.code == adm("-a -t 10.0.0.1:80 --bogus").code)
        #expect(failed2?.code != 0)
        #expect(err.contains("--bogus"))
        #expect(d2.destinationCount == 1) // the lines before the parse error were applied, none after
        #expect(executor2.runStoppingAtFailure([["-A", "-t", "10.0.0.2:80"]]) == nil)
    }

    @Test func keepalivedStartAndReloadOfAThousandRealServersAreOneBatchEach() async throws {
        let d = CountingDirector()
        let monitor = HealthMonitor(config: try keepalived(services: 10, reals: 100, weight: 1), backend: d.backend,
                                    log: { _ in }, environment: quietEnvironment())
        await monitor.start()
        #expect(d.destinationCount == 1000)
        #expect(d.batches == 1 && d.single == 0 && d.notifications == 1)

        await monitor.reload(try keepalived(services: 10, reals: 100, weight: 2))
        #expect(d.weights == [2])
        #expect(d.batches == 2 && d.single == 0 && d.notifications == 2)

        // A reload that changes nothing sends nothing.
        await monitor.reload(try keepalived(services: 10, reals: 100, weight: 2))
        #expect(d.batches == 2 && d.notifications == 2)
        await monitor.stop(removeServices: true)
        #expect(d.destinationCount == 0 && d.batches == 3 && d.notifications == 3)
    }
}

@Suite struct SocketClientBatchPartsTests {
    /// lvsadm -R of a big table: the batch goes in parts, each a request line lvsd accepts (1 MiB).
    @Test func aBigBatchGoesInPartsUnderLvsdsRequestLimit() throws {
        var requests: [ControlRequest] = []
        for s in 1...20 {
            let service = ServiceKey(proto: .tcp, address: IPAddress("10.99.0.\(s)")!, port: 80)
            requests.append(.addService(service, ServiceOptions(scheduler: "wrr")))
            for r in 1...250 {
                requests.append(.addDestination(service, DestinationOptions(address: IPAddress("10.98.\(s).\(r)")!, port: 80)))
            }
        }
        let parts = try SocketControlClient.parts(of: requests, maxBytes: SocketControlClient.batchBytes)
        #expect(parts.count > 1)
        #expect(Array(parts.joined()) == requests)
        for part in parts {
            let line = try JSONEncoder().encode(ControlRequest.batch(ControlBatch(part)))
            #expect(line.count < 1 << 20)
        }
        // 1,010 requests (bench/config-load.sh's table) are one part.
        #expect(try SocketControlClient.parts(of: Array(requests.prefix(1010)), maxBytes: SocketControlClient.batchBytes).count == 1)
        #expect(try SocketControlClient.parts(of: [], maxBytes: 10).isEmpty)
    }
}
