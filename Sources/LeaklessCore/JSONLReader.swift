/// Streams the records of a JSONL file with their line numbers. A malformed line is an error
/// naming the file and line; blank lines are skipped.
public final class JSONLReader: Sequence, IteratorProtocol {
    private let lines: LineReader

    public init(path: String) throws {
        lines = try LineReader(path: path)
    }

    public var path: String { lines.path }

    /// The next (line number, record), or nil at the end. Throws a `LocatedError` for a bad line.
    public func nextRecord() throws -> (line: Int, record: Record)? {
        while let line = try lines.nextContentLine() {
            let number = lines.lineNumber
            do {
                let value = try JSONParser.parse(bytes: Array(line))
                return (number, try Record(validating: value))
            } catch let error as JSONParser.SyntaxError {
                throw LocatedError(path: path, line: number, message: "invalid JSON: \(error.description)")
            } catch let error as RecordError {
                throw LocatedError(path: path, line: number, message: error.description)
            }
        }
        return nil
    }

    /// Passes over the next record without parsing it (a shard skipping what is not its own);
    /// false at the end of the file.
    public func skipRecord() throws -> Bool {
        try lines.nextContentLine() != nil
    }

    /// Iterating cannot throw: use `nextRecord()` in code that must report bad lines. This
    /// conformance is for files already known to be good (a stage's own finished output).
    public func next() -> Record? {
        (try? nextRecord())?.record
    }
}
