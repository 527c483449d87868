#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LVSControl

// lvsadm: an ipvsadm-compatible front end for lvsd (also works when invoked as `ipvsadm`).
let arguments = CommandLine.arguments

if arguments.count >= 2 && arguments[1] == "realserver" {
    let setup = RealServerSetup()
    let code = setup.run(Array(arguments.dropFirst(2)),
                         out: { fputs($0, stdout) },
                         err: { fputs($0, stderr) })
    fflush(stdout)
    exit(code)
}

let io = IPVSAdmIO(
    writeOut: { fputs($0, stdout) },
    writeErr: { fflush(stdout); fputs($0, stderr) },
    readLine: { Swift.readLine(strippingNewline: true) }
)
let executor = IPVSAdmExecutor(backend: SocketControlClient(), io: io)
let code = executor.run(arguments)
fflush(stdout)
exit(code)
