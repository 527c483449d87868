import Testing
import IPVSAdm
import LVSModel

/// `lvsadm daemon announcements --exabgp`: the lines ExaBGP's `process` API reads.
struct ExaBGPFeedTests {
    static func state(_ text: String, _ withheld: AnnouncementWithholding? = nil) -> VIPAnnouncement {
        VIPAnnouncement(prefix: AnnouncedPrefix(text)!, withheld: withheld)
    }

    @Test func changesBecomeAnnounceAndWithdrawLines() {
        var feed = ExaBGPFeed()
        #expect(feed.update([Self.state("10.0.0.2/32"), Self.state("10.0.0.1/32"), Self.state("10.0.0.3/32", .noAvailableRealServer)]) == [
            "announce route 10.0.0.1/32 next-hop self",
            "announce route 10.0.0.2/32 next-hop self",
        ])
        // Nothing changed: nothing said.
        #expect(feed.update([Self.state("10.0.0.1/32"), Self.state("10.0.0.2/32")]).isEmpty)
        #expect(feed.update([Self.state("10.0.0.1/32"), Self.state("10.0.0.2/32", .noAvailableRealServer),
                             Self.state("2001:db8::1/128")]) == [
            "withdraw route 10.0.0.2/32 next-hop self",
            "announce route 2001:db8::1/128 next-hop self",
        ])
        // lvsd does not answer: everything is withdrawn; when it answers again, announced again.
        #expect(feed.update(nil) == ["withdraw route 10.0.0.1/32 next-hop self", "withdraw route 2001:db8::1/128 next-hop self"])
        #expect(feed.update(nil).isEmpty)
        #expect(feed.update([Self.state("10.0.0.1/32")]) == ["announce route 10.0.0.1/32 next-hop self"])
        #expect(feed.announced == [AnnouncedPrefix("10.0.0.1/32")!])
    }
}
