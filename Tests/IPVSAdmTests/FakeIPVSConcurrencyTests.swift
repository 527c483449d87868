import Testing
import LVSModel
import LVSTestSupport

/// FakeIPVS is Sendable because a Mutex guards its state: requests sent from many tasks at once
/// (as the health monitor's actor and a test do) all apply, none lost to a torn update.
@Suite struct FakeIPVSConcurrencyTests {
    /// Services added at the same time from this many tasks.
    static let senders = 8
    /// Services each task adds.
    static let perSender = 50

    @Test func requestsFromManyTasksAllApply() async throws {
        let fake = FakeIPVS()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for sender in 0..<Self.senders {
                group.addTask {
                    for i in 0..<Self.perSender {
                        let key = ServiceKey(proto: .tcp, address: IPAddress(ipv4: 0x0A00_0000 | UInt32(sender << 8 | i)),
                                             port: 80)
                        let answer = try fake.execute(.addService(key, ServiceOptions(scheduler: "rr")))
                        #expect(answer == .ok)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(fake.requests.count == Self.senders * Self.perSender)
        #expect(Set(fake.table.services.map(\.key)).count == Self.senders * Self.perSender)
    }
}
