import Foundation

/// A stage whose records are independent and whose work waits on the network: the runner keeps
/// `concurrency` records in progress on worker threads, reads the input only as fast as they
/// finish (at most `window` records held), and writes outputs in input order.
/// `process` is called from several threads at once; `worker` (0..<concurrency) tells which,
/// so each thread can own its connection.
public protocol ConcurrentRecordStage: AnyObject, Sendable {
    var concurrency: Int { get }
    func process(_ record: Record, worker: Int) throws -> [StageOutput]
    /// Why the stage should stop taking new records (Ctrl-C, a budget reached), or nil.
    var stopReason: String? { get }
    var extraStats: [String: JSONValue] { get }
    /// Asks the workers to take no new records (one of them failed for good).
    func requestStop(_ reason: String)
    /// What the progress line adds: requests, cache hits, tokens, spending against the budget.
    var progressDetail: String { get }
}

extension ConcurrentRecordStage {
    public var progressDetail: String { "" }
}

/// Thrown after a stopped stage wrote the records that finished: its output exists but its
/// stats (the completion marker) do not, so the next run does the stage again, and finds the
/// finished model replies in the request cache.
public struct StageStopped: Error, CustomStringConvertible {
    /// The exit status of a stage executable that stopped early (EX_TEMPFAIL: try again).
    public static let exitCode: Int32 = 75

    public let reason: String
    public let finished: Int

    public init(reason: String, finished: Int) {
        self.reason = reason
        self.finished = finished
    }
    public var description: String {
        "stopped (\(reason)) after \(finished) record(s); their model replies are cached, so running again resumes"
    }
}

/// An error that means "stopped before this record was done" (Ctrl-C, a budget), not a failure:
/// the record is left for the next run.
public protocol StopSignal: Error {
    var stopsWork: Bool { get }
}

/// In-order results of work done on a fixed set of threads.
/// `@unchecked Sendable`: every stored property is read and written only with `condition` held.
final class OrderedWorkQueue: @unchecked Sendable {
    enum Outcome {
        case done([StageOutput])
        case failed(Error)
        case skipped
    }

    private let condition = NSCondition()
    private var pending: [(sequence: Int, record: Record)] = []
    private var results: [Int: Outcome] = [:]
    private var closed = false

    init(workers: Int, work: @escaping @Sendable (Record, Int) -> Outcome) {
        _ = WorkerPool(workers: workers) { [self] worker in
            while let (sequence, record) = self.take() {
                let outcome = work(record, worker)
                self.condition.lock()
                self.results[sequence] = outcome
                self.condition.broadcast()
                self.condition.unlock()
            }
        }
    }

    private func take() -> (Int, Record)? {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !closed { condition.wait() }
        if pending.isEmpty { return nil }
        return pending.removeFirst()
    }

    func submit(_ sequence: Int, _ record: Record) {
        condition.lock()
        pending.append((sequence, record))
        condition.broadcast()
        condition.unlock()
    }

    /// The outcome of `sequence`, waiting for it.
    func result(_ sequence: Int) -> Outcome {
        condition.lock()
        defer { condition.unlock() }
        while results[sequence] == nil { condition.wait() }
        return results.removeValue(forKey: sequence)!
    }

    func close() {
        condition.lock()
        closed = true
        pending.removeAll()
        condition.broadcast()
        condition.unlock()
    }
}

extension StageRunner {
    /// Runs a concurrent stage: like `run`, with up to `stage.concurrency` records in progress.
    @discardableResult
    public func run(concurrent stage: ConcurrentRecordStage, source: RecordSource, sink: RecordSink) throws -> StageStats {
        let workers = max(1, stage.concurrency)
        let window = workers * 4
        let queue = OrderedWorkQueue(workers: workers) { record, worker in
            if stage.stopReason != nil { return .skipped }
            do {
                return .done(try stage.process(record, worker: worker))
            } catch {
                // A failure for good stops the other workers at once, not when its turn to be written comes.
                if !(error is RecordError), !((error as? StopSignal)?.stopsWork ?? false) { stage.requestStop("failed") }
                return .failed(error)
            }
        }
        defer { queue.close() }
        var lines: [Int: Int] = [:]
        var submitted = 0
        var emitted = 0
        var finished = 0
        var stopped: String?
        var exhausted = false
        return try runLoop(source: source, sink: sink, extraStats: { stage.extraStats }, detail: { "\(min(submitted - emitted, workers)) in flight" + (stage.progressDetail.isEmpty ? "" : ", " + stage.progressDetail) }) { emit in
            while true {
                // Keep the window full while there is input and no reason to stop.
                while !exhausted && stopped == nil && submitted - emitted < window {
                    if let reason = stage.stopReason {
                        stopped = reason
                        break
                    }
                    guard let (line, record) = try source.nextRecord() else {
                        exhausted = true
                        break
                    }
                    lines[submitted] = line
                    queue.submit(submitted, record)
                    submitted += 1
                }
                guard emitted < submitted else { break }
                let line = lines.removeValue(forKey: emitted)
                switch queue.result(emitted) {
                case .done(let outputs):
                    finished += 1
                    try emit(outputs, line, true)
                case .failed(let error as StopSignal) where error.stopsWork:
                    stopped = stopped ?? stage.stopReason ?? "stopped"
                    try emit([], line, false)
                case .failed(let error as RecordError):
                    throw LocatedError(path: source.path, line: line, message: error.description)
                case .failed(let error):
                    stage.requestStop("failed")
                    throw error
                case .skipped:
                    stopped = stopped ?? stage.stopReason ?? "stopped"
                    try emit([], line, false)
                }
                emitted += 1
            }
            if let stopped = stopped ?? (exhausted ? nil : stage.stopReason) {
                return StageStopped(reason: stopped, finished: finished)
            }
            return nil
        }
    }
}

