import Testing
import LVSTestSupport
@testable import IPVSAdm
import LVSModel

/// lvsadm against an lvsd of another control-protocol version: one clear line, exit 2, whatever
/// the command.
@Suite struct ControlVersionTests {
    static func line(_ text: String) -> [UInt8] { Array(text.utf8) + [0x0A] }

    @Test func anLvsdOfAnotherVersionIsNamed() {
        let server = SocketClientLimitsTests.OneShotServer(lines: [
            Self.line(#"{"answer":"ok","version":2}"#),                                // a newer lvsd
            Self.line(#"{"snapshot":{"_0":{"services":[]}}}"#),                        // an lvsd before versions
            Self.line(#"{"answer":"versionMismatch","requested":1,"version":3}"#),     // lvsd refused ours
            Self.line(#"{"answer":"somethingNew","version":2}"#),                      // lvsd's listing, newer
        ])
        let newer = adm("-A -t 10.0.0.1:80", SocketControlClient(path: server.path), program: "lvsadm")
        #expect(newer.err == "lvsadm: lvsd speaks control protocol 2, this lvsadm speaks 1\n")
        #expect(newer.code == 2 && newer.out == "")
        let older = adm("-Ln", SocketControlClient(path: server.path), program: "lvsadm")
        #expect(older.err == "lvsadm: lvsd speaks control protocol 0, this lvsadm speaks 1\n")
        #expect(older.code == 2 && older.out == "")
        let refused = adm("-Z", SocketControlClient(path: server.path), program: "lvsadm")
        #expect(refused.err == "lvsadm: lvsd speaks control protocol 3, this lvsadm speaks 1\n")
        #expect(refused.code == 2)
        let listing = adm("-Lnc", SocketControlClient(path: server.path), program: "lvsadm")
        #expect(listing.err == "lvsadm: lvsd speaks control protocol 2, this lvsadm speaks 1\n")
        #expect(listing.code == 2)
    }

    @Test func theMessageSaysBothVersions() {
        #expect(SocketControlClient.versionMessage(lvsd: 7) == "lvsd speaks control protocol 7, this lvsadm speaks \(ControlProtocol.version)")
    }
}
