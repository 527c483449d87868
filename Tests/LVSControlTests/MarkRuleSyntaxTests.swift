import Testing
import LVSControl
import LVSModel

@Suite struct MarkRuleSyntaxTests {
    @Test func parsesAndFormatsRules() throws {
        let r = try MarkRuleSyntax.parse("192.168.1.100/32,tcp,80-81=1")
        #expect(r.destination == IPAddress("192.168.1.100")! && r.prefixLength == 32 && r.proto == .tcp)
        #expect(r.portLow == 80 && r.portHigh == 81 && r.mark == 1)
        #expect(MarkRuleSyntax.format(r) == "192.168.1.100/32,tcp,80-81=1")
        let v6 = try MarkRuleSyntax.parse("2001:db8::/64=3")
        #expect(v6.prefixLength == 64 && v6.proto == nil && MarkRuleSyntax.format(v6) == "2001:db8::/64=3")
        for bad in ["192.168.1.100", "192.168.1.100=0", "300.1.1.1=1", "10.0.0.0/33=1", "10.0.0.1,icmp=1", "10.0.0.1,tcp,90-80=1", "10.0.0.1,tcp,x=1"] {
            #expect(throws: MarkRuleSyntax.ParseError.self) { try MarkRuleSyntax.parse(bad) }
        }
    }
}
