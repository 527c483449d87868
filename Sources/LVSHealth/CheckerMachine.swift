import KeepalivedConfig

/// What to wait before a checker's next attempt.
enum NextCheck: Equatable, Sendable {
    case delayLoop
    case delayBeforeRetry
    /// max(delay_before_retry, delay_loop): a down HTTP_GET re-polling its failing URL.
    case longer
    /// HTTP_GET fast_recovery: immediately.
    case now

    func duration(_ t: CheckerTiming) -> Duration {
        switch self {
        case .delayLoop: return t.delayLoop
        case .delayBeforeRetry: return t.delayBeforeRetry
        case .longer: return max(t.delayLoop, t.delayBeforeRetry)
        case .now: return .zero
        }
    }
}

/// The per-checker state machine of §2.2.
struct CheckerMachine: Equatable, Sendable {
    var up: Bool
    var hasRun = false
    /// Failure counter; preset to `retry` at a fresh start so the first failure is decisive.
    var failures: UInt32
    var retry: UInt32
    /// HTTP_GET: URLs checked one per run; recovery walks all of them again.
    var urlCount: Int
    var urlIndex = 0
    var failedURL: Int?
    var multiURL: Bool
    var fastRecovery: Bool

    init(checker: KeepalivedChecker) {
        up = !checker.timing.alpha
        retry = checker.timing.retry
        failures = checker.timing.retry
        multiURL = checker.kind == .http || checker.kind == .ssl
        urlCount = max(1, checker.urls.count)
        fastRecovery = checker.fastRecovery
    }

    /// Records one attempt. Returns the new up/down state if it changed, and when to run next.
    mutating func record(success: Bool) -> (changed: Bool?, next: NextCheck) {
        multiURL ? recordHTTP(success) : recordSimple(success)
    }

    private mutating func recordSimple(_ success: Bool) -> (changed: Bool?, next: NextCheck) {
        if success {
            failures = 0
            hasRun = true
            if !up { up = true; return (true, .delayLoop) }
            return (nil, .delayLoop)
        }
        if up || !hasRun {
            if failures < retry {
                failures += 1
                return (nil, .delayBeforeRetry)
            }
            failures = 0
            hasRun = true
            if up { up = false; return (false, .delayLoop) }
            return (nil, .delayLoop)
        }
        return (nil, .delayLoop)
    }

    /// HTTP_GET / SSL_GET: a down checker re-polls the failing URL; after it succeeds, every URL
    /// must pass again from the first (1 + N successes). With alpha each URL must pass once.
    private mutating func recordHTTP(_ success: Bool) -> (changed: Bool?, next: NextCheck) {
        let i = urlIndex
        if success {
            failures = 0
            hasRun = true
            if up {
                urlIndex = (i + 1) % urlCount
                return (nil, .delayLoop)
            }
            let step: NextCheck = fastRecovery ? .now : .delayLoop
            if failedURL == i {
                failedURL = nil
                urlIndex = 0
                return (nil, step)
            }
            if i == urlCount - 1 {
                up = true
                urlIndex = 0
                return (true, .delayLoop)
            }
            urlIndex = i + 1
            return (nil, step)
        }
        if up {
            if failures < retry {
                failures += 1
                return (nil, .delayBeforeRetry)
            }
            failures = 0
            hasRun = true
            up = false
            failedURL = i
            return (false, .longer)
        }
        // Down (or alpha, or recovering): remember this URL and re-poll it.
        failures = 0
        hasRun = true
        failedURL = i
        return (nil, .longer)
    }
}
