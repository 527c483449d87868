import Foundation
import Testing
@testable import IPVSAdm
import LVSModel

/// The hand-written `-Lnc` answer reads back exactly as `JSONEncoder`'s does.
@Suite struct ConnectionListEncodingTests {
    static let list: [ConnectionSnapshot] = [
        ConnectionSnapshot(protocolName: "TCP", clientAddress: IPAddress("192.168.1.12")!, clientPort: 40000,
                           virtualAddress: IPAddress("192.168.1.100")!, virtualPort: 80,
                           destinationAddress: IPAddress("192.168.1.31")!, destinationPort: 80, state: "ESTABLISHED",
                           expiresSeconds: 899),
        ConnectionSnapshot(protocolName: "UDP", clientAddress: IPAddress("2001:db8:1::12")!, clientPort: 0,
                           virtualAddress: IPAddress("2001:db8:1::100")!, virtualPort: 53,
                           destinationAddress: IPAddress("2001:db8:1::32")!, destinationPort: 5353, state: "UDP",
                           expiresSeconds: 0),
        ConnectionSnapshot(protocolName: "IP", clientAddress: IPAddress("0.0.0.0")!, clientPort: 0,
                           virtualAddress: IPAddress("0.0.0.1")!, virtualPort: 0,
                           destinationAddress: IPAddress("10.0.0.255")!, destinationPort: 65535, state: "NONE",
                           expiresSeconds: UInt32.max, isTemplate: true),
        ConnectionSnapshot(protocolName: "SCTP", clientAddress: IPAddress("10.1.2.3")!, clientPort: 9,
                           virtualAddress: IPAddress("10.1.2.4")!, virtualPort: 10,
                           destinationAddress: IPAddress("10.1.2.5")!, destinationPort: 11, state: "a\"b\\c/d\n\u{1}é",
                           expiresSeconds: 10),
    ]

    @Test func readsBackAsTheCodableAnswer() throws {
        for list in [Self.list, [], Array(Self.list.prefix(1))] {
            let line = ConnectionListEncoding.responseLine(list)
            #expect(line.last == 0x0A)
            let decoded = try JSONDecoder().decode(ControlResponse.self, from: Data(line.dropLast()))
            #expect(decoded == .connections(list))
            let reference = try JSONEncoder().encode(ControlResponse.connections(list))
            #expect(try JSONDecoder().decode(ControlResponse.self, from: reference) == decoded)
        }
    }
}
