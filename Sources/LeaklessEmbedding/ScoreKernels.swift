/// The loops over a pool's similarity scores that every matched record runs (thousands of
/// pictures, twice a record), here because this module is optimised in debug builds too.
public enum ScoreKernels {
    /// Each position's geometric mean over the lists, negatives counted as 0: max(a, 0) for one
    /// list, √(max(a, 0) · max(b, 0)) for two (products in list order, then the root).
    public static func geometricMeanOfPositives(_ lists: [[Float]]) -> [Float] {
        guard let first = lists.first else { return [] }
        var total = [Float](repeating: 0, count: first.count)
        total.withUnsafeMutableBufferPointer { out in
            for (index, list) in lists.enumerated() {
                list.withUnsafeBufferPointer { values in
                    for k in 0..<min(out.count, values.count) {
                        let value = max(values[k], 0)
                        out[k] = index == 0 ? value : out[k] * value
                    }
                }
            }
            if lists.count > 1 { for k in 0..<out.count { out[k] = out[k].squareRoot() } }
        }
        return total
    }

    /// Each score rounded to millionths, so that scores equal to six places tie.
    public static func roundedToMillionths(_ scores: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: scores.count)
        result.withUnsafeMutableBufferPointer { out in
            scores.withUnsafeBufferPointer { values in
                for k in 0..<values.count { out[k] = (values[k] * 1_000_000).rounded() / 1_000_000 }
            }
        }
        return result
    }

    /// The `count`-th largest value (the smallest when there are fewer), in one pass.
    public static func threshold(ofTop count: Int, in values: [Float]) -> Float? {
        guard count > 0, !values.isEmpty else { return nil }
        var best = [Float](repeating: -.infinity, count: min(count, values.count))
        var filled = 0
        values.withUnsafeBufferPointer { input in
            best.withUnsafeMutableBufferPointer { top in
                for value in input where filled < top.count || value > top[top.count - 1] {
                    var place = min(filled, top.count - 1)
                    if filled < top.count { filled += 1 }
                    while place > 0 && top[place - 1] < value {
                        top[place] = top[place - 1]
                        place -= 1
                    }
                    top[place] = value
                }
            }
        }
        return best[filled - 1]
    }

    /// The positions whose value is at least `threshold`, in order.
    public static func indices(atLeast threshold: Float, in values: [Float]) -> [Int] {
        var result: [Int] = []
        values.withUnsafeBufferPointer { input in
            for k in 0..<input.count where input[k] >= threshold { result.append(k) }
        }
        return result
    }
}
