import Testing
@testable import KeepalivedConfig
@testable import LVSHealth
import LVSTestSupport
import LVSModel

/// A restart's health-checker states (issue 16): the next lvsd's monitor starts each real server
/// in the state the previous one had, not in its configured initial state.
@Suite struct HealthRestartTests {
    /// Checkers that never run on their own: results are fed with `handle`.
    static func environment() -> HealthEnvironment {
        HealthEnvironment(probe: { _ in .success }, sleep: { _ in try await Task.sleep(for: .seconds(3600)) },
                          runScript: { _ in }, jitter: { _ in .zero })
    }

    static func weights(_ fake: FakeIPVS) -> [String: Int32] {
        var out: [String: Int32] = [:]
        for s in fake.table.services { for d in s.destinations { out["\(d.options.address)"] = d.options.weight } }
        return out
    }

    @Test func checkerStatesCarryOver() async throws {
        let config = try KeepalivedLoader.parse(text: KeepalivedHealthMonitorTests.text).0
        let old = FakeIPVS()
        let m1 = HealthMonitor(config: config, backend: old, log: { _ in }, environment: Self.environment())
        await m1.start()
        // .2 goes down, the alpha .4 comes up.
        let t2 = await m1.checkers.first { $0.value.rs.address == IPAddress("10.0.0.2")! }!.key
        let t4 = await m1.checkers.first { $0.value.rs.address == IPAddress("10.0.0.4")! }!.key
        _ = await m1.handle(token: t2, result: .failure("refused"))
        _ = await m1.handle(token: t4, result: .success)
        #expect(Self.weights(old) == ["10.0.0.3": 1, "10.0.0.4": 1])
        let carried = await m1.carriedCheckerStates()
        #expect(carried.count == 3)
        await m1.stop()

        // The next lvsd: without the states .2 would come back up and .4 (alpha) stay out.
        let new = FakeIPVS()
        let m2 = HealthMonitor(config: config, backend: new, log: { _ in }, environment: Self.environment())
        var states: [String: Bool] = [:]
        for c in carried { states[c.label] = c.up }
        #expect(await m2.seedCheckerStates(states) == 3)
        await m2.start()
        #expect(Self.weights(new) == ["10.0.0.3": 1, "10.0.0.4": 1])
        await m2.stop()
    }
}
