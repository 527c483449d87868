import Glibc
import XCTest
import LVSSystem
@testable import LVSDataPlane

/// Socket and interface setup report failures through LVSSystem's `syscall`: the error names the
/// call, what it was for, and errno's text.
final class SetupErrorTests: XCTestCase {
    /// A failed call becomes `.system` with its call, errno and the setup's context.
    func testSystemErrorBecomesDataPlaneError() {
        let error = DataPlaneError(SystemError(call: "setsockopt(PACKET_RX_RING)", errno: ENOMEM), context: "packet socket on 'eth9'")
        XCTAssertEqual(error, .system(call: "setsockopt(PACKET_RX_RING)", errno: ENOMEM, context: "packet socket on 'eth9'"))
        XCTAssertEqual(error.description,
                       "setsockopt(PACKET_RX_RING) failed for packet socket on 'eth9': \(String(cString: strerror(ENOMEM))) (errno \(ENOMEM))")
        XCTAssertThrowsError(try DataPlaneError.context("interface 'eth9'") { try syscall("close(-1)") { close(-1) } }) { error in
            XCTAssertEqual(error as? DataPlaneError, .system(call: "close(-1)", errno: EBADF, context: "interface 'eth9'"))
        }
    }

    /// The interface lookup's ENODEV (and a name too long for IFNAMSIZ) is "no such interface".
    func testMissingInterface() {
        for name in ["lvs-none0", String(repeating: "x", count: 40)] {
            XCTAssertThrowsError(try InterfaceInfo.lookup(name)) { error in
                XCTAssertEqual(error as? DataPlaneError, .noSuchInterface(name))
            }
        }
    }
}
