import Foundation
import Synchronization

/// One call at a time per key: when several workers need the same request (the rewrites of one
/// seed ask for the same image), the first sends it and the others wait for it to finish, then
/// find its reply in the cache. Nothing paid for is sent twice at once.
public final class SingleFlight: Sendable {
    private let flights = Mutex<[ContentHash: DispatchGroup]>([:])

    public init() {}

    /// True: the caller leads, sends the request, and must call `finish(key)` after. False: the
    /// same key was in flight elsewhere; this returned once that call finished.
    public func lead(_ key: ContentHash) -> Bool {
        let (group, leading) = flights.withLock { table -> (DispatchGroup, Bool) in
            if let group = table[key] { return (group, false) }
            let group = DispatchGroup()
            group.enter()
            table[key] = group
            return (group, true)
        }
        if !leading { group.wait() }
        return leading
    }

    public func finish(_ key: ContentHash) {
        flights.withLock { $0.removeValue(forKey: key) }?.leave()
    }
}
