import Foundation
import LVSModel
import Testing

/// The control protocol's wire form: named keys (no synthesized `_0`), the version in every
/// request and answer, and a clear refusal of any other version.
@Suite struct ControlProtocolWireTests {
    static let web = ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80)
    static let real = DestinationOptions(address: IPAddress("10.0.0.11")!, port: 80, method: .directRoute, weight: 2)
    static let entry = ConnectionSnapshot(protocolName: "TCP", clientAddress: IPAddress("192.168.1.5")!, clientPort: 40000,
                                          virtualAddress: IPAddress("10.0.0.1")!, virtualPort: 80,
                                          destinationAddress: IPAddress("10.0.0.11")!, destinationPort: 80,
                                          state: "ESTABLISHED", expiresSeconds: 899)

    /// JSON as lvsadm and lvsd write it: keys sorted, so that a line is always the same bytes.
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Every request, as lvsadm writes it.
    static let requests: [(ControlRequest, String)] = [
        (.addService(web, ServiceOptions(scheduler: "rr")),
         #"{"options":{"flags":0,"netmask":4294967295,"scheduler":"rr","timeout":0},"request":"addService","#
            + #""service":{"address":"10.0.0.1","fwmark":0,"isIPv6":false,"port":80,"proto":6},"version":1}"#),
        (.editService(web, ServiceOptions(scheduler: "sh", flags: [.persistent], timeout: 300, persistenceEngine: "sip")),
         #"{"options":{"flags":1,"netmask":4294967295,"persistenceEngine":"sip","scheduler":"sh","timeout":300},"#
            + #""request":"editService","service":{"address":"10.0.0.1","fwmark":0,"isIPv6":false,"port":80,"#
            + #""proto":6},"version":1}"#),
        (.deleteService(ServiceKey(fwmark: 7, ipv6: true)),
         #"{"request":"deleteService","service":{"address":"::","fwmark":7,"isIPv6":true,"port":0,"proto":6},"#
            + #""version":1}"#),
        (.clear,
         #"{"request":"clear","version":1}"#),
        (.addDestination(web, real),
         #"{"destination":{"address":"10.0.0.11","lowerThreshold":0,"method":3,"port":80,"tunnelFlags":0,"#
            + #""tunnelPort":0,"tunnelType":0,"upperThreshold":0,"weight":2},"request":"addDestination","service":{"address":"10.0.0.1","#
            + #""fwmark":0,"isIPv6":false,"port":80,"proto":6},"version":1}"#),
        (.editDestination(web, real),
         #"{"destination":{"address":"10.0.0.11","lowerThreshold":0,"method":3,"port":80,"tunnelFlags":0,"#
            + #""tunnelPort":0,"tunnelType":0,"upperThreshold":0,"weight":2},"request":"editDestination","service":{"address":"10.0.0.1","#
            + #""fwmark":0,"isIPv6":false,"port":80,"proto":6},"version":1}"#),
        (.deleteDestination(web, address: IPAddress("2001:db8::1")!, port: 8080),
         #"{"address":"2001:db8::1","port":8080,"request":"deleteDestination","service":{"address":"10.0.0.1","#
            + #""fwmark":0,"isIPv6":false,"port":80,"proto":6},"version":1}"#),
        (.zero(web),
         #"{"request":"zero","service":{"address":"10.0.0.1","fwmark":0,"isIPv6":false,"port":80,"proto":6},"#
            + #""version":1}"#),
        (.zero(nil),
         #"{"request":"zero","version":1}"#),
        (.setTimeouts(IPVSTimeouts(tcp: 60, tcpFin: 0, udp: 30)),
         #"{"request":"setTimeouts","timeouts":{"tcp":60,"tcpFin":0,"udp":30},"version":1}"#),
        (.startDaemon(SyncDaemonSnapshot(role: "master", interface: "eth0", syncID: 3, maxLength: 1472, group: "224.0.0.81", port: 8848, ttl: 1)),
         #"{"daemon":{"group":"224.0.0.81","interface":"eth0","maxLength":1472,"port":8848,"role":"master","#
            + #""syncID":3,"ttl":1},"request":"startDaemon","version":1}"#),
        (.stopDaemon("backup"),
         #"{"request":"stopDaemon","role":"backup","version":1}"#),
        (.snapshot,
         #"{"request":"snapshot","version":1}"#),
        (.connections,
         #"{"request":"connections","version":1}"#),
        (.status,
         #"{"request":"status","version":1}"#),
        (.reload,
         #"{"request":"reload","version":1}"#),
    ]

    /// Every answer, as lvsd writes it (all but the listing, which lvsd writes by hand).
    static let answers: [(ControlResponse, String)] = [
        (.ok,
         #"{"answer":"ok","version":1}"#),
        (.failed(.noSuchService),
         #"{"answer":"failed","error":"noSuchService","version":1}"#),
        (.snapshot(TableSnapshot(services: [ServiceSnapshot(key: web, options: ServiceOptions(scheduler: "rr"))])),
         #"{"answer":"snapshot","snapshot":{"connectionTableSize":4096,"daemons":[],"services":[{"destinations":[],"#
            + #""key":{"address":"10.0.0.1","fwmark":0,"isIPv6":false,"port":80,"proto":6},"options":{"flags":0,"#
            + #""netmask":4294967295,"scheduler":"rr","timeout":0},"rates":{"cps":0,"inBPS":0,"inPPS":0,"outBPS":0,"#
            + #""outPPS":0},"stats":{"conns":0,"inBytes":0,"inPackets":0,"outBytes":0,"outPackets":0}}],"timeouts":{"tcp":900,"#
            + #""tcpFin":120,"udp":300},"version":"1.2.1"},"version":1}"#),
        (.connections([entry]),
         #"{"answer":"connections","connections":[["TCP","192.168.1.5",40000,"10.0.0.1",80,"10.0.0.11",80,"ESTABLISHED",899,false]],"#
            + #""fields":["protocol","client","cport","virtual","vport","destination","dport","state","expires","template"],"version":1}"#),
        (.text("lvsd: reloaded\n"),
         #"{"answer":"text","text":"lvsd: reloaded\n","version":1}"#),
        (.versionMismatch(requested: 0),
         #"{"answer":"versionMismatch","requested":0,"version":1}"#),
    ]

    @Test func requestsHaveNamedKeysAndTheVersion() throws {
        for (request, golden) in Self.requests {
            #expect(try Self.json(request) == golden)
            #expect(try JSONDecoder().decode(ControlRequest.self, from: Data(golden.utf8)) == request, "\(golden)")
        }
    }

    @Test func answersHaveNamedKeysAndTheVersion() throws {
        for (answer, golden) in Self.answers {
            #expect(try Self.json(answer) == golden)
            #expect(try JSONDecoder().decode(ControlResponse.self, from: Data(golden.utf8)) == answer, "\(golden)")
        }
    }

    /// lvsd tells a listing request by its exact line; the listing answer it writes by hand starts
    /// with the version, and reads back as the encoder's own answer.
    @Test func theListingsFixedPartsMatchTheEncoder() throws {
        #expect(try Self.json(ControlRequest.connections) == "\(ControlProtocol.connectionsRequestLine)")
        let handWritten = "\(ControlProtocol.connectionsAnswerHeader)\(ControlProtocol.connectionsAnswerTrailer)"
        #expect(handWritten.hasPrefix(#"{"version":\#(ControlProtocol.version),"#))
        #expect(try JSONDecoder().decode(ControlResponse.self, from: Data(handWritten.utf8)) == .connections([]))
    }

    /// A listing names its fields once; an entry is read by those names, in whatever order they
    /// come, and a listing with an unknown or a missing field is refused.
    @Test func listingEntriesAreReadByTheirFieldNames() throws {
        let reordered = #"{"version":1,"answer":"connections","fields":["template","expires","state","dport","destination","vport","#
            + #""virtual","cport","client","protocol"],"connections":[[false,899,"ESTABLISHED",80,"10.0.0.11",80,"10.0.0.1",40000,"#
            + #""192.168.1.5","TCP"]]}"#
        #expect(try JSONDecoder().decode(ControlResponse.self, from: Data(reordered.utf8)) == .connections([Self.entry]))
        let fields = ControlProtocol.connectionFields.map { "\"\($0)\"" }.joined(separator: ",")
        let row = #"["TCP","192.168.1.5",40000,"10.0.0.1",80,"10.0.0.11",80,"ESTABLISHED",899,false]"#
        for bad in [fields.replacingOccurrences(of: #""template""#, with: #""flags""#),
                    fields.replacingOccurrences(of: #","template""#, with: "")] {
            let line = #"{"version":1,"answer":"connections","fields":["# + bad + #"],"connections":["# + row + "]}"
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(ControlResponse.self, from: Data(line.utf8)) }
        }
        let long = #"{"version":1,"answer":"connections","fields":["# + fields + #"],"connections":["#
            + row.replacingOccurrences(of: "false]", with: "false,1]") + "]}"
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(ControlResponse.self, from: Data(long.utf8)) }
    }

    /// A request or answer in another version, or from before the version field, is refused with
    /// the version it carries, whatever else it holds.
    @Test func anotherVersionIsRefusedWithItsNumber() {
        let lines: [(String, Int)] = [
            (#"{"version":2,"request":"snapshot"}"#, 2),
            (#"{"version":2,"request":"somethingNew","with":{"a":1}}"#, 2),
            (#"{"snapshot":{}}"#, 0),
            (#"{"addService":{"_0":{"proto":6,"address":"10.0.0.1","port":80,"fwmark":0,"isIPv6":false},"_1":{"scheduler":"rr","flags":0,"timeout":0,"netmask":4294967295}}}"#, 0),
        ]
        for (line, version) in lines {
            #expect(throws: ControlProtocolMismatch(peerVersion: version)) {
                try JSONDecoder().decode(ControlRequest.self, from: Data(line.utf8))
            }
        }
        #expect(throws: ControlProtocolMismatch(peerVersion: 2)) {
            try JSONDecoder().decode(ControlResponse.self, from: Data(#"{"version":2,"answer":"ok"}"#.utf8))
        }
        #expect(throws: ControlProtocolMismatch(peerVersion: 0)) {
            try JSONDecoder().decode(ControlResponse.self, from: Data(#"{"ok":{}}"#.utf8))
        }
    }

    @Test func anUnknownRequestOfThisVersionIsMalformed() {
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"version":1,"request":"reboot"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ControlRequest.self, from: Data(#"{"version":1,"request":"addService"}"#.utf8))
        }
    }
}
