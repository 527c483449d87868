import Foundation
import Testing
@testable import KeepalivedConfig
import LVSModel

/// keepalived.conf's `mh-sorted` (lvsd's own; keepalived knows the bit as `flag-3`).
@Suite struct MhSortedKeywordTests {
    @Test func mhSortedAfterLbAlgoMh() throws {
        let text = "virtual_server 10.0.0.1 80 {\nlb_algo mh\nmh-port\nmh-sorted\nlb_kind DR\nprotocol TCP\nreal_server 10.0.0.2 80 {\n}\n}\n"
        let (c, d) = try KeepalivedLoader.parse(text: text, file: "keepalived.conf")
        #expect(c.virtualServers[0].schedulerFlags == [.hashPort, .sortedTable], "\(d)")
        let (c3, _) = try KeepalivedLoader.parse(text: text.replacingOccurrences(of: "mh-sorted", with: "flag-3"), file: "keepalived.conf")
        #expect(c3.virtualServers[0].schedulerFlags == c.virtualServers[0].schedulerFlags)
    }

    @Test func mhSortedWithoutMhIsIgnoredWithAWarning() throws {
        let text = "virtual_server 10.0.0.1 80 {\nlb_algo rr\nmh-sorted\nlb_kind DR\nprotocol TCP\nreal_server 10.0.0.2 80 {\n}\n}\n"
        let (c, d) = try KeepalivedLoader.parse(text: text, file: "keepalived.conf")
        #expect(c.virtualServers[0].schedulerFlags.isEmpty)
        #expect(d.contains { $0.description.contains("'mh-sorted' ignored: scheduler mh not set before it") }, "\(d)")
    }
}
