import COpenBLAS

/// The matrix products the rest of the project needs, over row-major Float buffers: the one
/// place outside the encoder that calls BLAS.
public enum Matrix {
    /// y = A x (or Aᵀ x with `transposed`), A `rows` x `columns`.
    public static func multiply(_ matrix: UnsafeBufferPointer<Float>, rows: Int, columns: Int, by vector: UnsafeBufferPointer<Float>,
                                into output: UnsafeMutableBufferPointer<Float>, transposed: Bool = false) {
        precondition(matrix.count >= rows * columns && vector.count >= (transposed ? rows : columns)
                     && output.count >= (transposed ? columns : rows))
        guard rows > 0, columns > 0 else { return }
        cblas_sgemv(CblasRowMajor, transposed ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), 1, matrix.baseAddress,
                    Int32(columns), vector.baseAddress, 1, 0, output.baseAddress, 1)
    }

    public static func multiply(_ matrix: [Float], rows: Int, columns: Int, by vector: [Float], transposed: Bool = false) -> [Float] {
        var output = [Float](repeating: 0, count: transposed ? columns : rows)
        matrix.withUnsafeBufferPointer { a in
            vector.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { multiply(a, rows: rows, columns: columns, by: x, into: $0, transposed: transposed) }
            }
        }
        return output
    }

    /// C = A Bᵀ: A `rows` x `inner`, B `columns` x `inner`, C `rows` x `columns` (each row of
    /// A against each row of B: similarities of unit vectors).
    public static func multiplyByTransposed(_ a: [Float], rows: Int, _ b: [Float], columns: Int, inner: Int) -> [Float] {
        precondition(a.count >= rows * inner && b.count >= columns * inner)
        var output = [Float](repeating: 0, count: rows * columns)
        guard rows > 0, columns > 0, inner > 0 else { return output }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(columns), Int32(inner), 1, a, Int32(inner), b,
                    Int32(inner), 0, &output, Int32(columns))
        return output
    }
}
