import Glibc
import Foundation
import Synchronization
import Testing
@testable import IPVSAdm
import LVSTestSupport
import LVSModel

@Suite struct IPVSAdmRestoreTests {
    @Test func saveRestoreRoundTrip() {
        let source = FakeIPVS()
        let commands = [
            "-A -t 10.0.0.100:80 -s rr",
            "-a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 1",
            "-a -t 10.0.0.100:80 -r 10.0.0.12 -w 3",
            "-A -t 10.0.0.100:443 -s sh -p -M 255.255.255.0 -b sh-fallback,sh-port",
            "-a -t 10.0.0.100:443 -r 10.0.0.13 -i --tun-type gue --tun-port 6080 --tun-remcsum",
            "-A -u 10.0.0.100:53 -s rr -o",
            "-a -u 10.0.0.100:53 -r 10.0.0.14:5353 -m -w 0",
            "-A -f 1 -s wlc -p 120",
            "-a -f 1 -r 10.0.0.12 -g -w 2",
            "-A -f 2 -6 -s mh -b mh-port --pe sip -p",
            "-a -f 2 -6 -r [2001:db8::5]:80 -g",
            "-A -t [2001:db8::100]:80 -s lc -p 60 -M 64",
            "-a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 5",
            "-A --sctp-service 10.0.0.100:9 -s wrr",
        ]
        for c in commands {
            let r = adm(c, source)
            #expect(r.code == 0 && r.err == "", "\(c): \(r.err)")
        }
        let saved = adm("-S -n", source)
        #expect(saved.code == 0)
        let target = FakeIPVS()
        let savedLines = saved.out.split(separator: "\n").map(String.init)
        let restored = adm("-R", target, stdin: savedLines)
        #expect(restored.code == 0 && restored.err == "" && restored.out == "")
        #expect(adm("-S -n", target).out == saved.out)
        #expect(adm("-Ln", target).out == adm("-Ln", source).out)
        // The restored services carry the same options.
        for s in source.table.services {
            let t = target.table.services.first { IPVSAdmExecutor.sameService($0.key, s.key) }
            #expect(t?.options == s.options)
        }
        // Round trip through names (no -n) works too.
        let named = adm("-S", source).out.split(separator: "\n").map(String.init)
        let target2 = FakeIPVS()
        #expect(adm("-R", target2, stdin: named).code == 0)
        #expect(adm("-S -n", target2).out == saved.out)
    }

    @Test func restoreDropsIpvsadmTokensAndBlankLines() {
        let fake = FakeIPVS()
        let r = adm("-R", fake, stdin: ["ipvsadm -A -t 10.0.0.1:80", "", "  \t ", "-a\t-t 10.0.0.1:80 ipvsadm -r 10.0.0.2\r"])
        #expect(r.code == 0 && r.err == "")
        #expect(fake.table.services.count == 1 && fake.table.services[0].destinations.count == 1)
    }

    @Test func restoreValidationErrorAborts() {
        let fake = FakeIPVS()
        let r = adm("-R", fake, stdin: ["-A -t 10.0.0.1:80", "-A -t 10.0.0.2:0", "-A -t 10.0.0.3:80"])
        #expect(r.code == 2)
        #expect(r.err == "Zero port specified for non-persistent service\n")
        #expect(fake.table.services.count == 1)
    }

    @Test func restoreBackendErrorsContinueAndLastLineDecides() {
        let fake = FakeIPVS()
        let r = adm("-R", fake, stdin: ["-A -t 10.0.0.1:80", "-A -t 10.0.0.1:80", "-A -t 10.0.0.2:80"])
        #expect(r.err == "Service already exists\n")
        #expect(r.code == 0)
        #expect(fake.table.services.count == 2)
        let fake2 = FakeIPVS()
        let r2 = adm("-R", fake2, stdin: ["-A -t 10.0.0.1:80", "-A -t 10.0.0.1:80"])
        #expect(r2.code == 255 && r2.err == "Service already exists\n")
        // A popt error returns -1 for the line but does not stop processing.
        let fake3 = FakeIPVS()
        let r3 = adm("-R", fake3, stdin: ["-A -t 10.0.0.1:80 --bogus", "-A -t 10.0.0.2:80"])
        #expect(r3.err == "--bogus: unknown option\n" && r3.code == 0)
        #expect(fake3.table.services.count == 1)
    }

    @Test func restoreHasNoComments() {
        let fake = FakeIPVS()
        let r = adm("-R", fake, stdin: ["# saved rules", "-A -t 10.0.0.1:80"])
        #expect(r.code == 255)
        #expect(r.err == "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n")
        #expect(fake.table.services.isEmpty)
    }

    @Test func nestedRestoreAndListingInsideRestore() {
        let fake = FakeIPVS()
        let nested = adm("-R", fake, stdin: ["-R"])
        #expect(nested.code == 255 && nested.err == "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n")
        let list = adm("-R", fake, stdin: ["-A -t 10.0.0.1:80", "-L -n --timeout"])
        #expect(list.out == "Timeout (tcp tcpfin udp): 900 120 300\n" && list.code == 0)
        // -h inside -R prints the help and ends the run with 0.
        let help = adm("-R", fake, stdin: ["-h", "-A -t 10.0.0.9:80"])
        #expect(help.code == 0 && help.out.hasPrefix("ipvsadm v1.31"))
        #expect(!fake.table.services.contains { $0.key.port == 80 && $0.key.address == IPAddress("10.0.0.9")! })
        let empty = adm("-R", FakeIPVS(), stdin: [])
        #expect(empty.code == 0 && empty.out == "" && empty.err == "")
    }

    @Test func requestsSentForCommands() {
        let fake = FakeIPVS()
        _ = adm("-A -t 10.0.0.1:80 -s rr -p 100 -M 255.255.255.0 -o", fake)
        _ = adm("-A -u 10.0.0.1:53 -o", fake)
        _ = adm("-E -u 10.0.0.1:53", fake)
        _ = adm("-Z", fake)
        _ = adm("-Z -u 10.0.0.1:53", fake)
        _ = adm("-d -u 10.0.0.1:53 -r 10.0.0.2:99", fake)
        _ = adm("--stop-daemon backup --syncid 4", fake)
        _ = adm("-C", fake)
        let key = ServiceKey(proto: .udp, address: IPAddress("10.0.0.1")!, port: 53)
        #expect(fake.requests == [
            .addService(key, ServiceOptions(scheduler: "wlc", flags: [.onePacket])),
            .editService(key, ServiceOptions(scheduler: "wlc")),
            .zero(nil),
            .zero(key),
            // -d does not force the port (only -a/-e do).
            .deleteDestination(key, address: IPAddress("10.0.0.2")!, port: 99),
            .stopDaemon("backup"),
            .clear,
        ])
    }
}

/// The socket client against a one-shot in-process server on a temporary Unix socket.
@Suite struct IPVSAdmSocketClientTests {
    @Test func unreachableSocketMessage() {
        let client = SocketControlClient(path: "/nonexistent/lvsd.sock")
        let r = adm("-Ln", client, program: "lvsadm")
        #expect(r.err == "lvsadm: cannot reach lvsd at /nonexistent/lvsd.sock: No such file or directory (is lvsd running?)\n")
        #expect(r.code == 2)
        #expect(adm("-v", client).code == 0)
    }

    @Test func requestAndResponseLines() throws {
        let path = NSTemporaryDirectory() + "lvsadm-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        unlink(path)
        let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #expect(server >= 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(server, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(server, 1) == 0)
        defer { close(server); unlink(path) }

        let table = TableSnapshot(services: [ServiceSnapshot(key: ServiceKey(proto: .tcp, address: IPAddress("10.0.0.1")!, port: 80),
                                                             options: ServiceOptions(scheduler: "rr"))])
        let received = LockedLines()
        let thread = Thread {
            let conn = accept(server, nil, nil)
            guard conn >= 0 else { return }
            defer { close(conn) }
            var pending: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            var answered = 0
            while answered < 2 {
                let n = buf.withUnsafeMutableBytes { recv(conn, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                pending.append(contentsOf: buf[..<n])
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<nl])
                    pending.removeSubrange(...nl)
                    received.append(String(decoding: line, as: UTF8.self))
                    let request = try? JSONDecoder().decode(ControlRequest.self, from: Data(line))
                    let response: ControlResponse = request == .snapshot ? .snapshot(table) : .failed(.serviceExists)
                    var out = Array(try! JSONEncoder().encode(response))
                    out.append(0x0A)
                    _ = out.withUnsafeBytes { send(conn, $0.baseAddress, $0.count, 0) }
                    answered += 1
                }
            }
        }
        thread.start()
        setenv("LVSD_SOCKET", path, 1)
        let client = SocketControlClient()
        unsetenv("LVSD_SOCKET")
        #expect(client.path == path)
        let list = adm("-Ln", client)
        #expect(list.code == 0)
        #expect(list.out.hasSuffix("TCP  10.0.0.1:80 rr\n"))
        let add = adm("-A -t 10.0.0.1:80", client)
        #expect(add.code == 255 && add.err == "Service already exists\n")
        let lines = received.lines
        #expect(lines.count == 2)
        #expect(!lines.contains { $0.contains("\n") })
        if lines.count == 2 {
            #expect(try JSONDecoder().decode(ControlRequest.self, from: Data(lines[0].utf8)) == .snapshot)
        }
    }
}

/// Lines collected from several threads, behind a mutex.
final class LockedLines: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ s: String) { storage.withLock { $0.append(s) } }
    var lines: [String] { storage.withLock { $0 } }
}
