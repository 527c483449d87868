import Foundation
import Testing
@testable import IPVSAdm
import LVSModel

/// lvsadm's hand reader of the `-Lnc` answer gives what `JSONDecoder` gives, and leaves to
/// `JSONDecoder` every line it does not take; the byte writer of `-Lnc` writes what the string
/// formatter writes.
@Suite struct ConnectionListDecodingTests {
    static func snapshot(_ proto: String, _ client: String, _ cport: UInt16, _ virtual: String, _ vport: UInt16,
                         _ dest: String, _ dport: UInt16, _ state: String, _ expires: UInt32,
                         template: Bool = false) -> ConnectionSnapshot {
        ConnectionSnapshot(protocolName: proto, clientAddress: IPAddress(client)!, clientPort: cport,
                           virtualAddress: IPAddress(virtual)!, virtualPort: vport,
                           destinationAddress: IPAddress(dest)!, destinationPort: dport, state: state,
                           expiresSeconds: expires, isTemplate: template)
    }

    /// IPv4, IPv6, templates (fwmark and persistence), extreme values, escaped and non-ASCII names.
    static let list: [ConnectionSnapshot] = [
        snapshot("TCP", "192.168.1.12", 40000, "192.168.1.100", 80, "192.168.1.31", 80, "ESTABLISHED", 899),
        snapshot("UDP", "2001:db8:1::12", 0, "2001:db8:1::100", 53, "2001:db8:1::32", 5353, "UDP", 0),
        snapshot("IP", "0.0.0.0", 0, "0.0.0.1", 0, "10.0.0.255", 65535, "NONE", UInt32.max, template: true),
        snapshot("TCP", "10.0.0.0", 0, "192.168.1.100", 0, "192.168.1.32", 0, "NONE", 360, template: true),
        snapshot("TCP", "::", 1, "::1", 65535, "fe80::1:2:3:4", 9, "SYN_RECV", 59),
        snapshot("TCP", "255.255.255.255", 65535, "1.2.3.4", 1, "100.10.0.1", 10, "FIN_WAIT", 60),
        snapshot("SCTP", "10.1.2.3", 9, "10.1.2.4", 10, "10.1.2.5", 11, "a\"b\\c/d\n\u{1}\u{1F}\t\r\u{7F}é€😀", 10),
        snapshot("", "10.1.2.3", 9, "10.1.2.4", 10, "10.1.2.5", 11, "", 10),
    ]

    static func jsonDecoded(_ line: [UInt8]) throws -> [ConnectionSnapshot]? {
        guard case .connections(let list) = try JSONDecoder().decode(ControlResponse.self, from: Data(line)) else { return nil }
        return list
    }

    /// lvsd's own encoding (without the newline).
    static func lvsdLine(_ list: [ConnectionSnapshot]) -> [UInt8] {
        Array(ConnectionListEncoding.responseLine(list).dropLast())
    }

    @Test func readsLvsdsAnswerAsJSONDecoderDoes() throws {
        var lists: [[ConnectionSnapshot]] = [Self.list, [], [Self.list[0]], [Self.list[1]], [Self.list[6]]]
        lists += Self.list.indices.map { Array(Self.list[$0...]) }
        for list in lists {
            let line = Self.lvsdLine(list)
            let hand = ConnectionListDecoding.connections(line)
            #expect(hand != nil, "not read: \(String(decoding: line, as: UTF8.self))")
            #expect(hand == list)
            #expect(try hand == Self.jsonDecoded(line))
        }
    }

    /// `n` generated IPv4 entries (every length of address and number the encoder writes).
    static func generated(_ n: Int) -> [ConnectionSnapshot] {
        var list: [ConnectionSnapshot] = []
        var x: UInt32 = 12345
        for i in 0..<n {
            x = x &* 1_103_515_245 &+ 12345
            let c = ConnectionSnapshot(protocolName: i % 7 == 0 ? "UDP" : "TCP", clientAddress: IPAddress(ipv4: x),
                                       clientPort: UInt16(truncatingIfNeeded: x >> 7),
                                       virtualAddress: IPAddress(ipv4: x >> UInt32(i % 32)), virtualPort: UInt16(i % 3 == 0 ? 0 : i),
                                       destinationAddress: IPAddress(ipv4: UInt32(i)), destinationPort: 80,
                                       state: i % 5 == 0 ? "TIME_WAIT" : "ESTABLISHED", expiresSeconds: x % 100_000,
                                       isTemplate: i % 11 == 0)
            list.append(c)
        }
        return list
    }

    /// A table's worth of generated entries.
    @Test func readsAManyEntryAnswerAsJSONDecoderDoes() throws {
        let list = Self.generated(5000)
        let line = Self.lvsdLine(list)
        let hand = ConnectionListDecoding.connections(line)
        #expect(hand == list)
        #expect(try hand == Self.jsonDecoded(line))
    }

    /// Escapes lvsd does not write but JSON has (\b, \f, \u, surrogate pairs): read as JSONDecoder reads them.
    @Test func readsOtherStringEscapesAsJSONDecoderDoes() throws {
        let states = [#"\b\f\u0041\u00e9\u20AC"#, #"\ud83d\ude00x"#, #"\u0000"#, #"x\/y"#]
        for state in states {
            let line = Array(("\(ControlProtocol.connectionsAnswerHeader)"
                + #"["TCP","1.2.3.4",1,"5.6.7.8",2,"9.10.11.12",3,""# + state + #"",4,false]]}"#).utf8)
            let hand = ConnectionListDecoding.connections(line)
            #expect(hand != nil, "not read: \(state)")
            #expect(try hand == Self.jsonDecoded(line), "state \(state)")
        }
    }

    /// Lines that are not lvsd's form give nil (the client then asks JSONDecoder).
    @Test func leavesEverythingElseToJSONDecoder() throws {
        let good = String(decoding: Self.lvsdLine([Self.list[0]]), as: UTF8.self)
        let others: [String] = [
            good.replacingOccurrences(of: ",", with: ", "),                        // white space
            good.replacingOccurrences(of: #"",40000,"#, with: #"",70000,"#), // out of range
            good.replacingOccurrences(of: #"",40000,"#, with: #"",040000,"#), // leading zero
            good.replacingOccurrences(of: #"",40000,"#, with: #"",4e4,"#),
            good.replacingOccurrences(of: #""192.168.1.12""#, with: #""192.168.1.012""#),
            good.replacingOccurrences(of: #""192.168.1.12""#, with: #""192.168.1""#),
            good.replacingOccurrences(of: #""192.168.1.12""#, with: #""::ffff:1.2.3.4""#), // mapped: refused by IPAddress
            good.replacingOccurrences(of: #",false]"#, with: #",0]"#),
            good.replacingOccurrences(of: "ESTABLISHED", with: #"ESTAB\u00"#),
            good.replacingOccurrences(of: "ESTABLISHED", with: #"\udc00"#),                  // lone low surrogate
            good.replacingOccurrences(of: "ESTABLISHED", with: "EST\u{1}"),                 // raw control character
            good + " ",
            String(good.dropLast()),
            #"{"version":1,"answer":"failed","error":"noSuchService"}"#,
            #"{"version":1,"answer":"text","text":"lvsd: too many control clients\n"}"#,
            good.replacingOccurrences(of: #"{"version":1,"#, with: #"{"version":2,"#),   // another protocol version
            "",
        ]
        for line in others {
            #expect(ConnectionListDecoding.connections(Array(line.utf8)) == nil, "read: \(line)")
        }
        // Key order and spacing that JSONDecoder takes: the fallback still gives the entries.
        let encoded = try JSONEncoder().encode(ControlResponse.connections(Self.list))
        #expect(try Self.jsonDecoded(Array(encoded)) == Self.list)
        // Invalid UTF-8 in a name: JSONDecoder refuses it, and so does the reader.
        var bad = Array(good.utf8)
        bad[bad.firstIndex(of: UInt8(ascii: "E"))!] = 0xFF
        #expect(ConnectionListDecoding.connections(bad) == nil)
    }

    /// With -n, the byte writer's lines are the string formatter's lines, for every entry
    /// (those it does not take itself go through the string formatter).
    @Test func numericListingBytesAreTheStringFormattersText() {
        let formatter = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        var list = Self.list
        list.append(Self.snapshot("TCP", "1.2.3.4", 5, "6.7.8.9", 10, "11.12.13.14", 15, "CR\r\nLF", 61))
        list.append(Self.snapshot("TCPX", "1.2.3.4", 5, "6.7.8.9", 10, "11.12.13.14", 15, "A_VERY_LONG_STATE_NAME", 6000))
        for format: IPVSAdmFormat in [[.numeric], [.numeric, .persistentConn]] {
            var expected = formatter.connectionHeader(format: format)
            for c in list { expected += formatter.connectionLine(c, numeric: true) }
            #expect(String(decoding: formatter.connectionListing(list, format: format), as: UTF8.self) == expected)
            #expect(formatter.connections(list, format: format) == expected)
        }
        for c in list where ![6, 8].contains(list.firstIndex(of: c)!) {
            var bytes: [UInt8] = []
            #expect(IPVSAdmFormatter.appendNumericLine(c, to: &bytes), "\(c)")
            #expect(String(decoding: bytes, as: UTF8.self) == formatter.connectionLine(c, numeric: true))
        }
        var none: [UInt8] = []
        #expect(!IPVSAdmFormatter.appendNumericLine(list[6], to: &none) && none.isEmpty) // non-ASCII state
        #expect(!IPVSAdmFormatter.appendNumericLine(list[8], to: &none) && none.isEmpty) // CR LF: one character, two bytes
    }
}

/// The socket client reads a `.connections` answer (by hand or, failing that, with JSONDecoder)
/// and any other answer to that request as before.
@Suite struct SocketClientConnectionListTests {
    @Test func theClientReadsTheListingAndOtherAnswers() throws {
        let list = ConnectionListDecodingTests.list
        let big = ConnectionListDecodingTests.generated(20000) // about 4 MB: many reads
        let lines = [ConnectionListEncoding.responseLine(big), // lvsd's lines: the hand reader
                     ConnectionListEncoding.responseLine(list),
                     Array(try JSONEncoder().encode(ControlResponse.connections(list))) + [0x0A],
                     Array(try JSONEncoder().encode(ControlResponse.failed(.noSuchService))) + [0x0A],
                     ConnectionListEncoding.responseLine([])]
        let server = SocketClientLimitsTests.OneShotServer(lines: lines)
        #expect(try SocketControlClient(path: server.path).execute(.connections) == .connections(big))
        #expect(try SocketControlClient(path: server.path).execute(.connections) == .connections(list))
        #expect(try SocketControlClient(path: server.path).execute(.connections) == .connections(list))
        #expect(try SocketControlClient(path: server.path).execute(.connections) == .failed(.noSuchService))
        #expect(try SocketControlClient(path: server.path).execute(.connections) == .connections([]))
    }
}

/// The stream reader gives the whole-line reader's entries however the line is cut into pieces,
/// and tells other lines apart at once.
@Suite struct ConnectionListStreamTests {
    /// Feeds `line` in pieces of the given sizes (cycled); the entries and the final step.
    static func read(_ line: [UInt8], pieces: [Int]) -> (entries: [ConnectionSnapshot], last: ConnectionListStream.Step, stream: ConnectionListStream) {
        var stream = ConnectionListStream()
        var entries: [ConnectionSnapshot] = []
        var offset = 0, k = 0
        while true {
            let step = stream.next()
            switch step {
            case .entry(let c): entries.append(c)
            case .needMore:
                guard offset < line.count else { return (entries, step, stream) }
                let n = min(pieces[k % pieces.count], line.count - offset)
                k += 1
                line[offset..<offset + n].withUnsafeBytes { stream.feed($0) }
                offset += n
            case .end, .notLvsdForm: return (entries, step, stream)
            }
        }
    }

    @Test func anyCutGivesTheWholeLinesEntries() {
        let list = ConnectionListDecodingTests.list
        let line = ConnectionListEncoding.responseLine(list)
        for size in [1, 2, 3, 7, 64, 1000, line.count] {
            let r = Self.read(line, pieces: [size])
            #expect(r.entries == list, "pieces of \(size)")
            #expect(r.last == .end)
            #expect(r.stream.unconsumed.isEmpty)
        }
        // every single cut point, in two pieces
        for cut in 1..<line.count {
            let r = Self.read(line, pieces: [cut, line.count])
            #expect(r.entries == list && r.last == .end, "cut at \(cut)")
        }
        let empty = Self.read(ConnectionListEncoding.responseLine([]), pieces: [1])
        #expect(empty.entries.isEmpty && empty.last == .end)
        let many = ConnectionListDecodingTests.generated(20000)
        let big = Self.read(ConnectionListEncoding.responseLine(many), pieces: [65536, 1 << 20, 3])
        #expect(big.entries == many && big.last == .end)
    }

    @Test func otherAnswersAreToldApartBeforeAnyEntryWithEveryByteKept() throws {
        for answer: ControlResponse in [.failed(.noSuchService), .ok, .text("lvsd: too many control clients\n"),
                                        .snapshot(TableSnapshot(services: []))] {
            let line = Array(try JSONEncoder().encode(answer)) + [0x0A]
            for size in [1, 5, line.count] {
                let r = Self.read(line, pieces: [size])
                #expect(r.last == .notLvsdForm, "\(answer) in pieces of \(size)")
                #expect(r.entries.isEmpty)
                // all that was fed is still there for JSONDecoder
                if let fed = r.stream.fedSoFar { #expect(line.starts(with: fed)) } else { Issue.record("bytes dropped") }
            }
        }
    }

    @Test func aLineThatGoesWrongAfterSomeEntriesIsNotLvsdsForm() {
        let list = ConnectionListDecodingTests.list
        var text = String(decoding: ConnectionListEncoding.responseLine(list), as: UTF8.self)
        text = text.replacingOccurrences(of: #""10.1.2.3",9,"#, with: #""10.1.2.3", 9,"#)
        let r = Self.read(Array(text.utf8), pieces: [3])
        #expect(r.last == .notLvsdForm)
        #expect(r.entries == Array(list.prefix(6)))
        #expect(r.stream.fedSoFar == nil)
    }
}

/// lvsadm -Lnc through the socket client: streamed when lvsd's line comes, read whole otherwise;
/// the same output either way.
@Suite struct SocketClientConnectionStreamTests {
    static func run(_ lines: [[UInt8]], _ argv: String = "-Lnc") -> (code: Int32, out: String, err: String) {
        let server = SocketClientLimitsTests.OneShotServer(lines: lines)
        var out: [UInt8] = [], err = ""
        let io = IPVSAdmIO(writeOut: { out += Array($0.utf8) }, writeErr: { err += $0 }, readLine: { nil },
                           writeOutBytes: { out += $0 })
        let code = IPVSAdmExecutor(backend: SocketControlClient(path: server.path), io: io, resolver: NumericOnlyResolver())
            .run(["lvsadm"] + argv.split(separator: " ").map(String.init))
        return (code, String(decoding: out, as: UTF8.self), err)
    }

    @Test func streamedAndWholeListingsPrintTheSame() throws {
        let formatter = IPVSAdmFormatter(resolver: NumericOnlyResolver())
        let big = ConnectionListDecodingTests.generated(60000) // over 4 MB of output: several chunks
        let expected = formatter.connections(big, format: [.numeric])
        #expect(expected.utf8.count > IPVSAdmExecutor.outputChunkBytes)
        // lvsd's line: streamed
        let streamed = Self.run([ConnectionListEncoding.responseLine(big)])
        #expect(streamed.code == 0 && streamed.err == "")
        #expect(streamed.out == expected)
        // another layout of the same answer: read whole by JSONDecoder
        var spaced = String(decoding: ConnectionListEncoding.responseLine(big), as: UTF8.self)
        spaced = spaced.replacingOccurrences(of: #""connections":["#, with: #""connections": ["#)
        let whole = Self.run([Array(spaced.utf8)])
        #expect(whole.code == 0 && whole.out == expected)
        // a line that goes wrong after entries: asked again, and the second answer is printed
        var marked = big
        marked[15000].state = "MARK"
        spaced = String(decoding: ConnectionListEncoding.responseLine(marked), as: UTF8.self)
        spaced = spaced.replacingOccurrences(of: #","MARK","#, with: #", "MARK","#)
        let list = ConnectionListDecodingTests.list
        let again = Self.run([Array(spaced.utf8), ConnectionListEncoding.responseLine(list)])
        #expect(again.code == 0 && again.err == "")
        #expect(again.out == formatter.connections(list, format: [.numeric]))
        // a refusal
        let refused = Self.run([Array(try JSONEncoder().encode(ControlResponse.failed(.noSuchService))) + [0x0A]])
        #expect(refused.code == 1 && refused.out == "" && !refused.err.isEmpty)
        // names (no -n): the same lines as the formatter's
        let named = Self.run([ConnectionListEncoding.responseLine(list)], "-Lc")
        #expect(named.code == 0 && named.out == formatter.connections(list, format: []))
    }
}
