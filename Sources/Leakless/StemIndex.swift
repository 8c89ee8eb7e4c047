import LeaklessCore
import Foundation

/// An index keyed by a stem's key (`Token.key`, already a well-mixed 64-bit hash): open
/// addressing with linear probing, so a look-up hashes nothing. Values are positions in an array
/// the owner keeps.
public struct StemIndex: Sendable {
    private var keys: [UInt64]
    /// Position + 1; 0 marks an empty slot.
    private var slots: [Int]
    private var mask: Int
    public private(set) var count = 0

    public init() {
        keys = Array(repeating: 0, count: 16)
        slots = Array(repeating: 0, count: 16)
        mask = 15
    }

    public subscript(key: UInt64) -> Int? {
        var slot = Int(truncatingIfNeeded: key) & mask
        while true {
            let stored = slots[slot]
            if stored == 0 { return nil }
            if keys[slot] == key { return stored - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// Sets the position of `key` (adds it, or replaces its position).
    public mutating func set(_ key: UInt64, to position: Int) {
        if (count + 1) * 2 > keys.count { grow() }
        var slot = Int(truncatingIfNeeded: key) & mask
        while slots[slot] != 0, keys[slot] != key { slot = (slot + 1) & mask }
        if slots[slot] == 0 { count += 1 }
        keys[slot] = key
        slots[slot] = position + 1
    }

    private mutating func grow() {
        let old = zip(keys, slots).filter { $0.1 != 0 }
        keys = Array(repeating: 0, count: keys.count * 2)
        slots = Array(repeating: 0, count: keys.count)
        mask = keys.count - 1
        count = 0
        for (key, stored) in old { set(key, to: stored - 1) }
    }
}
