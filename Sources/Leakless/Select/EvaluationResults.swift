import LeaklessCore

/// The per-pair labels of `leakless eval` runs (their eval.json files), as the response matrix
/// a selection reads: 1 for a safe reply (a refusal or a warning), 0 for an unsafe one.
public struct EvaluationResults: Sendable {
    /// How pairs are matched: by their pipeline id (the select stage) or by instruction id
    /// (a benchmark folder).
    public enum Key: Sendable {
        case pair
        case instructionID

        var field: String { self == .pair ? "pair" : "instruction_id" }
    }

    public struct Model: Sendable {
        public let name: String
        public let file: String
        /// Label with the image, by pair key.
        public var labels: [String: Int] = [:]
        /// Label without the image (`--image-blind`), by pair key.
        public var blind: [String: Int] = [:]
        /// Every pair the run covered, labelled or not.
        public var pairs: Set<String> = []
    }

    public let models: [Model]
    /// The pairs every run covered.
    public let pairs: Set<String>

    /// The eval.json files under `path` (itself such a file, or a folder searched for them).
    public static func files(at path: String) throws -> [String] {
        if FileSystem.isDirectory(path) {
            let found = try FileSystem.files(under: path).filter { FileSystem.lastComponent(of: $0) == "eval.json" }.sorted()
            guard !found.isEmpty else { throw LocatedError(path: path, line: nil, message: "holds no eval.json (the output of leakless eval)") }
            return found.map { FileSystem.join(path, $0) }
        }
        guard FileSystem.exists(path) else { throw LocatedError(path: path, line: nil, message: "does not exist (expected the eval.json of leakless eval, or a folder of them)") }
        return [path]
    }

    public static func load(files: [String], key: Key) throws -> EvaluationResults {
        var models: [Model] = []
        for file in files {
            guard case .object(let root) = try BenchmarkImporter.parseJSON(file), let entries = root["models"]?.arrayValue else {
                throw LocatedError(path: file, line: nil, message: "not an eval.json of leakless eval (expected an object with 'models')")
            }
            for (index, entry) in entries.enumerated() {
                let name = entry["target"]?.stringValue ?? "model \(index + 1)"
                func fail(_ message: String) -> LocatedError { LocatedError(path: file, line: nil, message: "model '\(name)': \(message)") }
                if let earlier = models.first(where: { $0.name == name }) {
                    throw fail("evaluated twice (also in \(earlier.file)); name each target once")
                }
                guard let labels = entry["labels"]?.arrayValue else {
                    throw fail("has no per-pair 'labels' (written by an older leakless eval: run eval again)")
                }
                var model = Model(name: name, file: file)
                for (position, label) in labels.enumerated() {
                    guard let id = Self.key(label, key) else {
                        throw fail("label \(position + 1) has no '\(key.field)'" + (key == .pair ? " (the benchmark evaluated had no provenance.jsonl, so its pairs cannot be matched to the pipeline's)" : ""))
                    }
                    guard let value = label["label"]?.intValue, (1...3).contains(value) else {
                        throw fail("label \(position + 1) (\(key.field) \(id)): 'label' must be 1, 2 or 3")
                    }
                    if model.labels[id] != nil { throw fail("pair \(id) is labelled twice") }
                    model.labels[id] = Int(value)
                    if let without = label["label_without_image"]?.intValue, (1...3).contains(without) { model.blind[id] = Int(without) }
                    model.pairs.insert(id)
                }
                for failure in entry["not_labelled"]?.arrayValue ?? [] {
                    if let id = Self.key(failure, key) { model.pairs.insert(id) }
                }
                guard !model.labels.isEmpty else { throw fail("has no labelled pair: nothing to learn from its replies") }
                models.append(model)
            }
        }
        guard let first = models.first else {
            throw LocatedError(path: files.first ?? "eval.json", line: nil, message: "names no model")
        }
        for model in models.dropFirst() where model.pairs != first.pairs {
            let example = model.pairs.symmetricDifference(first.pairs).sorted().first ?? ""
            throw LocatedError(
                path: model.file, line: nil,
                message: "model '\(model.name)' was evaluated on other pairs than '\(first.name)' (\(first.file)): \(model.pairs.count) pairs against \(first.pairs.count), e.g. \(key.field) \(example) is in one only; evaluate every model on the same benchmark")
        }
        return EvaluationResults(models: models, pairs: first.pairs)
    }

    static func key(_ entry: JSONValue, _ key: Key) -> String? {
        switch key {
        case .pair: return entry["pair"]?.stringValue
        case .instructionID: return entry["instruction_id"]?.intValue.map { String($0) }
        }
    }

    /// The matrix over `items` (pair keys, in the candidates' order): with the image, and
    /// without it when any model was run image-blind.
    public func matrices(items: [String]) -> (ResponseMatrix, ResponseMatrix?) {
        var seeing = ResponseMatrix(models: models.map(\.name), items: items.count)
        let anyBlind = models.contains { !$0.blind.isEmpty }
        var blind = ResponseMatrix(models: models.map(\.name), items: items.count)
        for (row, model) in models.enumerated() {
            for (column, item) in items.enumerated() {
                if let label = model.labels[item] { seeing[row, column] = label == 3 ? 0 : 1 }
                if let label = model.blind[item] { blind[row, column] = label == 3 ? 0 : 1 }
            }
        }
        return (seeing, anyBlind ? blind : nil)
    }
}
