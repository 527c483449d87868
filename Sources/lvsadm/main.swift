import Glibc
import LVSRealServer
import LVSModel
import IPVSAdm

// lvsadm: an ipvsadm-compatible front end for lvsd (also works when invoked as `ipvsadm`).
let arguments = CommandLine.arguments

if arguments.count >= 2 && arguments[1] == "realserver" {
    let setup = RealServerSetup()
    let code = setup.run(Array(arguments.dropFirst(2)),
                         out: { fputs($0, standardOutput) },
                         err: { fputs($0, standardError) })
    fflush(standardOutput)
    exit(code)
}

// `lvsadm drain`: weight 0, wait until the real server's connections end, optionally delete it.
if arguments.count >= 2 && arguments[1] == "drain" {
    let drainIO = IPVSAdmIO(writeOut: { fputs($0, standardOutput); fflush(standardOutput) },
                            writeErr: { fflush(standardOutput); fputs($0, standardError) },
                            readLine: { nil })
    let runner = DrainRunner(backend: SocketControlClient(), io: drainIO, environment: .system())
    exit(runner.run(Array(arguments.dropFirst(2))))
}

// `lvsadm daemon sysctl [NAME[=VALUE]]...`: the kernel's run-time settings (DaemonSysctl.swift).
if arguments.count >= 3 && arguments[1] == "daemon" && arguments[2] == "sysctl" {
    exit(DaemonSysctl.run(Array(arguments.dropFirst(3))))
}

// `lvsadm daemon announcements [--exabgp]`: what lvsd announces (DaemonAnnouncements.swift).
if arguments.count >= 3 && arguments[1] == "daemon" && arguments[2] == "announcements" {
    exit(DaemonAnnouncements.run(Array(arguments.dropFirst(3))))
}

// `lvsadm daemon status|reload`: lvsd's own state and configuration reload (not ipvsadm commands).
if arguments.count >= 2 && arguments[1] == "daemon" {
    let verb = arguments.count == 3 ? arguments[2] : ""
    let request: ControlRequest
    switch verb {
    case "status": request = .status
    case "reload": request = .reload
    default:
        fputs("usage: lvsadm daemon status|reload|sysctl [NAME[=VALUE]]...|announcements [--exabgp]\n", standardError)
        exit(2)
    }
    do {
        switch try SocketControlClient().execute(request) {
        case let .text(t):
            fputs(t, standardOutput)
            exit(request == .reload && t.contains("failed") ? 1 : 0) // a failed reload says so in its text
        case let .failed(e):
            fputs("lvsadm: lvsd refused: \(e.errnoName)\n", standardError)
            exit(1)
        default:
            exit(0)
        }
    } catch let e as ControlTransportError {
        fputs("lvsadm: \(e.message)\n", standardError)
        exit(2)
    } catch {
        fputs("lvsadm: \(error)\n", standardError)
        exit(2)
    }
}

let io = IPVSAdmIO(
    writeOut: { fputs($0, standardOutput) },
    writeErr: { fflush(standardOutput); fputs($0, standardError) },
    readLine: { Swift.readLine(strippingNewline: true) },
    writeOutBytes: { bytes in _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, standardOutput) } }
)
let executor = IPVSAdmExecutor(backend: SocketControlClient(), io: io)
let code = executor.run(arguments)
fflush(standardOutput)
exit(code)
