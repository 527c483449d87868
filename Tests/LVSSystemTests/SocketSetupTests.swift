import Glibc
import XCTest
import LVSSystem

/// Socket setup over `syscall`: the addresses are filled once, and a failed call names itself
/// (and the option) with its errno.
final class SocketSetupTests: XCTestCase {
    /// A Unix path that does not fit in `sun_path` (with its NUL) is refused, one that fits is kept.
    func testUnixPathLength() throws {
        XCTAssertNil(RawSocketAddress.unix(path: String(repeating: "x", count: 108)))
        let address = try XCTUnwrap(RawSocketAddress.unix(path: String(repeating: "x", count: 107)))
        XCTAssertEqual(address.family, AF_UNIX)
        guard case let .unix(sa) = address else { return XCTFail("not AF_UNIX") }
        let path = withUnsafeBytes(of: sa.sun_path) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        XCTAssertEqual(path.count, 107)
    }

    /// IPv4 fields are stored in network order.
    func testIPv4ByteOrder() {
        guard case let .ipv4(sa) = RawSocketAddress.ipv4(address: 0xE000_0051, port: 8848) else { return XCTFail("not AF_INET") }
        XCTAssertEqual(Int32(sa.sin_family), AF_INET)
        XCTAssertEqual(UInt16(bigEndian: sa.sin_port), 8848)
        XCTAssertEqual(UInt32(bigEndian: sa.sin_addr.s_addr), 0xE000_0051)
    }

    /// bind, listen and connect on a Unix socket in a temporary directory: a client reaches the listener.
    func testBindListenConnect() throws {
        var template = Array("/tmp/lvs-socket-test.XXXXXX".utf8CString)
        let dir = try XCTUnwrap(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        let path = dir + "/s.sock"
        defer { unlink(path); rmdir(dir) }
        let address = try XCTUnwrap(RawSocketAddress.unix(path: path))
        let listener = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        defer { close(listener) }
        try SocketSetup.bind(listener, to: address)
        try SocketSetup.listen(listener, backlog: 1)
        let client = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        defer { close(client) }
        try SocketSetup.connect(client, to: address)
        XCTAssertNotEqual(fcntl(client, F_GETFD) & FD_CLOEXEC, 0)
        // A second bind to the same path fails with EADDRINUSE, named "bind".
        let other = try SocketSetup.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue))
        defer { close(other) }
        XCTAssertThrowsError(try SocketSetup.bind(other, to: address)) { error in
            XCTAssertEqual(error as? SystemError, SystemError(call: "bind", errno: EADDRINUSE))
        }
    }

    /// A refused option names itself: "setsockopt(NAME)".
    func testOptionErrorNamesTheOption() {
        XCTAssertThrowsError(try SocketSetup.setOption(-1, SOL_SOCKET, SO_RCVTIMEO, timeval(tv_sec: 1, tv_usec: 0), name: "SO_RCVTIMEO")) { error in
            XCTAssertEqual(error as? SystemError, SystemError(call: "setsockopt(SO_RCVTIMEO)", errno: EBADF))
        }
        XCTAssertThrowsError(try SocketSetup.setOption(-1, SOL_SOCKET, SO_BINDTODEVICE, string: "lo", name: "SO_BINDTODEVICE")) { error in
            XCTAssertEqual((error as? SystemError)?.call, "setsockopt(SO_BINDTODEVICE)")
        }
    }
}
