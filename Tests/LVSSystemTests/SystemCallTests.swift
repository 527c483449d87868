import Glibc
import XCTest
import LVSSystem

/// The one syscall wrapper: EINTR is retried, any other errno is thrown with the call's name, and
/// the message names the call and strerror's text.
final class SystemCallTests: XCTestCase {
    /// A call interrupted twice (returns -1, errno EINTR) is made again until it succeeds.
    func testRetriesOnEINTR() throws {
        var calls = 0
        let result = try syscall("fake(2)") { () -> Int32 in
            calls += 1
            if calls <= 2 {
                errno = EINTR
                return -1
            }
            return 7
        }
        XCTAssertEqual(result, 7)
        XCTAssertEqual(calls, 3)
    }

    /// A real failure carries its errno and the name, and is not retried.
    func testCarriesErrnoAndName() {
        var calls = 0
        XCTAssertThrowsError(try syscall("close(-1)") { () -> Int32 in
            calls += 1
            return close(-1)
        }) { error in
            XCTAssertEqual(error as? SystemError, SystemError(call: "close(-1)", errno: EBADF))
        }
        XCTAssertEqual(calls, 1)
    }

    /// The name is built only on failure, after errno was read: building it may not change the
    /// errno reported.
    func testErrnoIsReadBeforeTheName() {
        XCTAssertThrowsError(try syscall({ () -> String in errno = ENOMEM; return "open(/nonexistent)" }()) {
            open("/nonexistent/lvs-system-test", O_RDONLY)
        }) { error in
            XCTAssertEqual((error as? SystemError)?.errno, ENOENT)
        }
    }

    /// Success values other than -1 (0, positive, other negative values) pass through.
    func testSuccessPassesThrough() throws {
        XCTAssertEqual(try syscall("zero") { Int32(0) }, 0)
        XCTAssertEqual(try syscall("big") { Int(1 << 40) }, 1 << 40)
        var fds: [Int32] = [-1, -1]
        try syscall("pipe") { pipe(&fds) }
        defer { close(fds[0]); close(fds[1]) }
        XCTAssertGreaterThanOrEqual(fds[0], 0)
        XCTAssertEqual(try syscall("write") { write(fds[1], "x", 1) }, 1)
    }

    /// The -errno convention (libbpf, CLVSXDP): -EINTR retried, -errno thrown, >= 0 returned.
    func testNegatedErrno() throws {
        var calls = 0
        XCTAssertEqual(try syscallNegatedErrno("bpf(fake)") { () -> Int32 in
            calls += 1
            return calls == 1 ? -EINTR : 3
        }, 3)
        XCTAssertEqual(calls, 2)
        XCTAssertThrowsError(try syscallNegatedErrno("bpf_map_update_elem(vips)") { Int32(-E2BIG) }) { error in
            XCTAssertEqual(error as? SystemError, SystemError(call: "bpf_map_update_elem(vips)", errno: E2BIG))
        }
    }

    /// mmap's MAP_FAILED is a failure with errno; a mapping is returned.
    func testMapping() throws {
        XCTAssertThrowsError(try syscallMapping("mmap(bad fd)") { mmap(nil, 4096, PROT_READ, MAP_SHARED, -1, 0) }) { error in
            XCTAssertEqual((error as? SystemError)?.errno, EBADF)
        }
        let p = try syscallMapping("mmap(anonymous)") { mmap(nil, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) }
        munmap(p, 4096)
    }

    /// The description names the call, strerror's text and the number.
    func testDescription() {
        let e = SystemError(call: "setsockopt(PACKET_RX_RING)", errno: ENOMEM)
        XCTAssertEqual(e.message, String(cString: strerror(ENOMEM)))
        XCTAssertEqual("\(e)", "setsockopt(PACKET_RX_RING): \(String(cString: strerror(ENOMEM))) (errno \(ENOMEM))")
    }
}
