import Glibc
import IPVSAdm
import LVSModel

/// `lvsadm daemon sysctl [NAME[=VALUE]]...`: no argument lists every run-time setting with its
/// value; NAME shows one; NAME=VALUE sets it (all assignments as one change, or none). A bad name
/// or value is named on stderr, nothing is changed, and the exit status is 1.
enum DaemonSysctl {
    static func run(_ args: [String]) -> Int32 {
        var show: [Sysctl] = []
        var set: [SysctlAssignment] = []
        do {
            for arg in args {
                if arg.contains("=") {
                    let a = try SysctlSyntax.assignment(arg)
                    guard a.setting.settableAtRunTime else {
                        throw SysctlError("\(a.setting.name): fixed at start (lvsd --set-sysctl or --settings)")
                    }
                    set.append(a)
                    show.append(a.setting)
                } else {
                    show.append(try SysctlSyntax.setting(arg))
                }
            }
        } catch {
            fputs("lvsadm: \(error)\n", standardError)
            return 1
        }
        do {
            switch try SocketControlClient().execute(.sysctl(set)) {
            case let .sysctls(values):
                let list = show.isEmpty ? Sysctl.allCases : show
                for s in list { fputs("\(s.name) = \(values[s])\n", standardOutput) }
                return 0
            case let .failed(e):
                fputs("lvsadm: lvsd refused the settings: \(e.errnoName)\n", standardError)
                return 1
            default:
                fputs("lvsadm: unexpected answer from lvsd\n", standardError)
                return 1
            }
        } catch let e as ControlTransportError {
            fputs("lvsadm: \(e.message)\n", standardError)
            return 2
        } catch {
            fputs("lvsadm: \(error)\n", standardError)
            return 2
        }
    }
}
