import Glibc
import LVSCore
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
        #expect(MetricsEndpoint.status("404 Not Found").hasPrefix("HTTP/1.0 404 Not Found\r\n"))
        #expect((try? MetricsEndpoint(address: "nonsense", director: director, logger: Lab.logger)) == nil)
    }
}
