import Testing
@testable import IPVSAdm
import LVSModel
import LVSTestSupport

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
