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

// `lvsadm daemon status|reload|restart|sysctl|announcements`: lvsd's own verbs (IPVSAdm's
// DaemonCommand), not ipvsadm commands.
if arguments.count >= 2 && arguments[1] == "daemon" {
    let daemonIO = IPVSAdmIO(writeOut: { fputs($0, standardOutput) },
                             writeErr: { fflush(standardOutput); fputs($0, standardError) },
                             readLine: { nil })
    let command = DaemonCommand(backend: SocketControlClient(), io: daemonIO,
                                feedLine: { fputs($0 + "\n", standardOutput) >= 0 && fflush(standardOutput) == 0 },
                                pause: { usleep(useconds_t($0 * 1_000_000)) })
    let code = command.run(Array(arguments.dropFirst(2)))
    fflush(standardOutput)
    exit(code)
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
