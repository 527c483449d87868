import Glibc
import LVSCore
import LVSEngineTestSupport
import LVSModel
import Testing
@testable import LVSDaemon

/// The Prometheus rendering (the HTTP side is swift-nio's): what a scrape shows of the engine.
@Suite(.enabled(if: geteuid() == 0, "root: the director's packet socket"))
struct MetricsTests {
    @Test func aScrapeRendersServicesDestinationsAndCounters() throws {
        let engine = Lab.engine()
        let director = try Director(engine: engine, logger: Lab.logger)
        // The only endpoint of this test process (it bootstraps swift-metrics, once per process).
        let endpoint = try MetricsEndpoint(address: "127.0.0.1:9100", director: director, logger: Lab.logger)
        #expect(Lab.send(engine.primary!, port: 5000, flags: Lab.syn, at: Lab.second) == .forward(interface: Lab.interface))
        let text = String(decoding: endpoint.scrape(), as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"lvs_service_connections_total{service="TCP 192.168.1.100:80"} 1"#))
        #expect(lines.contains(#"lvs_destination_connections_total{service="TCP 192.168.1.100:80",destination="192.168.1.31:80"} 1"#))
        #expect(lines.contains(#"lvs_destination_weight{service="TCP 192.168.1.100:80",destination="192.168.1.31:80"} 1.0"#))
        #expect(lines.contains { $0.hasPrefix("lvs_connection_table_entries ") })
        #expect(lines.contains(#"lvs_dropped_packets_total{reason="no-service"} 0"#) || lines.contains { $0.hasPrefix("lvs_dropped_packets_total{") })
        // Counters advance by the difference since the last scrape.
        _ = Lab.send(engine.primary!, port: 5001, flags: Lab.syn, at: Lab.second)
        let again = String(decoding: endpoint.scrape(), as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(again.contains(#"lvs_service_connections_total{service="TCP 192.168.1.100:80"} 2"#))
        // A removed real server's series go at the next scrape (config churn does not grow the
        // registry, and nothing stale is exported); added again, they are back (the engine takes
        // the real server back from its trash with its counters, as the kernel does).
        let rs1 = #"destination="192.168.1.31:80""#
        let before = endpoint.seriesCount
        try engine.deleteDestination(SeedLab.vip, address: SeedLab.rs1, port: 80)
        let removed = String(decoding: endpoint.scrape(), as: UTF8.self)
        #expect(!removed.contains(rs1))
        #expect(endpoint.seriesCount < before)
        var steady: Int?
        for round in 0..<50 { // config management in a loop: the number of series stays put
            let churn = IPAddress("192.168.9.\(round + 1)")!
            try engine.addDestination(SeedLab.vip, DestinationOptions(address: churn, port: 80))
            #expect(String(decoding: endpoint.scrape(), as: UTF8.self).contains("\(churn):80"))
            try engine.deleteDestination(SeedLab.vip, address: churn, port: 80)
            _ = endpoint.scrape()
            if let steady { #expect(endpoint.seriesCount == steady) } else { steady = endpoint.seriesCount }
        }
        #expect(steady.map { $0 < before } == true)
        try engine.addDestination(SeedLab.vip, DestinationOptions(address: SeedLab.rs1, port: 80))
        let back = String(decoding: endpoint.scrape(), as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(back.contains(#"lvs_destination_connections_total{service="TCP 192.168.1.100:80",destination="192.168.1.31:80"} 2"#))
        #expect(endpoint.seriesCount == before)
        #expect(MetricsEndpoint.status("404 Not Found").hasPrefix("HTTP/1.0 404 Not Found\r\n"))
        #expect((try? MetricsEndpoint(address: "nonsense", director: director, logger: Lab.logger)) == nil)
    }
}
