import Testing
import LVSModel

/// The announcement lines of `lvsadm daemon status`, read back by `lvsadm daemon announcements`.
struct AnnouncementStatusTests {
    @Test func everyStateReadsBackAsWritten() {
        var all: [VIPAnnouncement] = []
        for text in ["10.0.0.1/32", "2001:db8::1/128", "10.1.0.0/24"] {
            let prefix = AnnouncedPrefix(text)!
            #expect(prefix.description == text)
            all.append(VIPAnnouncement(prefix: prefix, withheld: nil))
            for r in AnnouncementWithholding.allCases { all.append(VIPAnnouncement(prefix: prefix, withheld: r)) }
        }
        let status = "data plane: afpacket\n" + all.map { $0.description + "\n" }.joined() + "vrrp: none\n"
        #expect(VIPAnnouncement.parseStatus(status) == all)
        #expect(VIPAnnouncement(prefix: AnnouncedPrefix("2001:db8::1/128")!, withheld: .noService).description
                == "announce 2001:db8::1/128: withheld (no service)")
    }

    @Test func otherLinesAndBadPrefixesAreNotAnnouncements() {
        for line in ["announce 10.0.0.1: announced", "announce 10.0.0.1/33: announced", "announce 10.0.0.1/32: maybe",
                     "announce 10.0.0.1/32: withheld (tired)", "announcement: table 100 via lvsann0", "announce x/32: announced"] {
            #expect(VIPAnnouncement.parse(Substring(line)) == nil, "\(line)")
        }
    }
}
