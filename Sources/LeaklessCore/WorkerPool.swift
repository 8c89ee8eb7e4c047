import Foundation
import Synchronization

/// Threads that each run a body to its end, for work that blocks (network calls, file decoding,
/// a server's connections) and so does not belong on Swift's cooperative pool. Every thread the
/// project starts is started here.
public final class WorkerPool: Sendable {
    private let finished: DispatchGroup

    /// Starts `workers` threads; thread `worker` runs `body(worker)`.
    public init(workers: Int, stackSize: Int = 4 << 20, _ body: @escaping @Sendable (_ worker: Int) -> Void) {
        let group = DispatchGroup()
        for worker in 0..<max(1, workers) {
            group.enter()
            let thread = Thread {
                body(worker)
                group.leave()
            }
            thread.stackSize = stackSize
            thread.start()
        }
        finished = group
    }

    /// Waits until every thread's body has returned.
    public func wait() { finished.wait() }

    /// Runs `body(worker)` on `workers` threads and waits for them.
    public static func run(workers: Int, _ body: @escaping @Sendable (_ worker: Int) -> Void) {
        WorkerPool(workers: workers, body).wait()
    }

    /// `transform(&state, index)` for every index below `count`, on `workers` threads, each with
    /// its own state from `makeState`; results in index order. `progress(done)` is called after
    /// each item, serialised.
    public static func map<State, Result: Sendable>(
        count: Int, workers: Int, makeState: @escaping @Sendable () -> State,
        progress: (@Sendable (Int) -> Void)? = nil, _ transform: @escaping @Sendable (inout State, Int) -> Result
    ) -> [Result] {
        let shared = Mutex<(next: Int, done: Int, results: [Result?])>((0, 0, Array(repeating: nil, count: count)))
        run(workers: min(workers, max(1, count))) { _ in
            var state = makeState()
            while true {
                let index: Int? = shared.withLock { work in
                    guard work.next < count else { return nil }
                    work.next += 1
                    return work.next - 1
                }
                guard let index else { return }
                let result = transform(&state, index)
                shared.withLock { work in
                    work.results[index] = result
                    work.done += 1
                    progress?(work.done)
                }
            }
        }
        return shared.withLock { $0.results.map { $0! } }
    }
}

/// Named counters shared by threads.
public final class LockedCounters: Sendable {
    private let values = Mutex<[String: Int]>([:])

    public init() {}

    public func add(_ name: String, _ amount: Int = 1) {
        values.withLock { $0[name, default: 0] += amount }
    }

    public subscript(name: String) -> Int {
        values.withLock { $0[name] ?? 0 }
    }

    public var snapshot: [String: Int] {
        values.withLock { $0 }
    }
}
