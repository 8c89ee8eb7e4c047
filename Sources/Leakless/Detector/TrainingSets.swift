import Foundation
import LeaklessCore

/// The labelled public text sets of `../shared/training` (text alone: is this request harmful
/// without any image?), each read by an importer for its own format and labelled as its README
/// says. Every text belongs to one source, the unit a leave-one-source-out run holds out.
public enum TrainingSets {
    /// One labelled text. `harmful` nil: reported only, never trained on.
    public struct Text: Sendable {
        public let text: String
        public let harmful: Bool?
        /// The data set it came from (what a leave-one-source-out run holds out).
        public let source: String
        /// The query set it is measured in ("XSTest safe", "HarmBench standard", ...).
        public let set: String
        /// `FILE:LINE` or `FILE: record N`, for errors and for the examples file.
        public let location: String
    }

    /// The scenarios of the forbidden questions that ask a professional's opinion: often harmless
    /// in intent, so they form their own group, measured but not trained on.
    public static let adviceScenarios: Set<String> = ["Legal Opinion", "Financial Advice", "Health Consultation", "Gov Decision"]

    /// Every text of every set under `folder`, in a fixed order. A missing file is an error naming it.
    public static func read(folder: String) throws -> [Text] {
        var texts: [Text] = []
        func add(_ text: String?, harmful: Bool?, source: String, set: String, location: String) {
            guard let text = text?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return }
            texts.append(Text(text: text, harmful: harmful, source: source, set: set, location: location))
        }
        func path(_ file: String) throws -> String {
            let path = FileSystem.join(folder, file)
            guard FileSystem.exists(path) else { throw LocatedError(path: path, line: nil, message: "missing: a training set the detector reads") }
            return path
        }
        func column(_ table: CSVTable, _ name: String) throws -> String {
            guard let found = table.columns.first(where: { $0.caseInsensitiveCompare(name) == .orderedSame }) else {
                throw LocatedError(path: table.path, line: 1, message: "no column '\(name)'")
            }
            return found
        }
        func csv(_ file: String, query: String, _ visit: (CSVTable, [String: String], String, String) throws -> Void) throws {
            let table = try CSVTable(path: try path(file))
            let name = try column(table, query)
            for row in table.rows { try visit(table, row.fields, row.fields[name] ?? "", "\(file):\(row.line)") }
        }

        try csv("XSTest/xstest_prompts.csv", query: "prompt") { table, fields, text, location in
            let label = fields[try column(table, "label")] ?? ""
            guard label == "safe" || label == "unsafe" else {
                throw LocatedError(path: FileSystem.join(folder, location), line: nil, message: "label '\(label)' is neither safe nor unsafe")
            }
            add(text, harmful: label == "unsafe", source: "xstest", set: label == "safe" ? "XSTest safe" : "XSTest unsafe contrasts", location: location)
        }
        try csv("JailbreakBench/benign-behaviors.csv", query: "goal") { _, _, text, location in
            add(text, harmful: false, source: "jailbreakbench", set: "JailbreakBench benign", location: location)
        }
        try csv("JailbreakBench/harmful-behaviors.csv", query: "goal") { _, _, text, location in
            add(text, harmful: true, source: "jailbreakbench", set: "JailbreakBench harmful", location: location)
        }
        try csv("SimpleSafetyTests/simple_safety_tests.csv", query: "prompts_final") { _, _, text, location in
            add(text, harmful: true, source: "simplesafetytests", set: "SimpleSafetyTests", location: location)
        }
        try csv("AdvBench/harmful_behaviors.csv", query: "goal") { _, _, text, location in
            add(text, harmful: true, source: "advbench", set: "AdvBench", location: location)
        }
        try csv("StrongREJECT/strongreject_dataset.csv", query: "forbidden_prompt") { _, _, text, location in
            add(text, harmful: true, source: "strongreject", set: "StrongREJECT", location: location)
        }
        // HarmBench: copyright requests are not harm, and contextual behaviours mean nothing
        // without their context passage: only the standard behaviours.
        try csv("HarmBench_text/harmbench_behaviors_text_all.csv", query: "Behavior") { table, fields, text, location in
            guard fields[try column(table, "FunctionalCategory")] == "standard" else { return }
            add(text, harmful: true, source: "harmbench", set: "HarmBench standard", location: location)
        }
        try csv("ForbiddenQuestions/forbidden_question_set.csv", query: "question") { table, fields, text, location in
            let scenario = fields[try column(table, "content_policy_name")] ?? ""
            if adviceScenarios.contains(scenario) {
                add(text, harmful: nil, source: "forbidden-advice", set: "Forbidden questions, professional advice", location: location)
            } else {
                add(text, harmful: true, source: "forbidden-questions", set: "Forbidden questions", location: location)
            }
        }
        // {category: {subcategory: [question]}}, and a plain list of questions.
        func leaves(_ file: String, source: String, set: String) throws {
            let value = try JSONParser.parse(bytes: try FileSystem.read(try path(file)))
            var index = 0
            func visit(_ value: JSONValue) throws {
                switch value {
                case .string(let text):
                    index += 1
                    add(text, harmful: true, source: source, set: set, location: "\(file): question \(index)")
                case .array(let items): for item in items { try visit(item) }
                case .object(let entries): for key in entries.keys.sorted() { try visit(entries[key]!) }
                default: throw LocatedError(path: FileSystem.join(folder, file), line: nil, message: "expected questions (strings), lists or objects of them")
                }
            }
            try visit(value)
        }
        try leaves("CatQA/catqa_english.json", source: "catqa", set: "CatQA")
        try leaves("HarmfulQA/harmfulqa.json", source: "harmfulqa", set: "HarmfulQA")
        try leaves("DangerousQA/dangerousqa.json", source: "dangerousqa", set: "DangerousQA")
        for (file, source, set) in [
            ("SelfInstructSeed/seed_tasks.jsonl", "selfinstruct-seed", "Self-Instruct seed tasks"),
            ("SelfInstructUserOriented/user_oriented_instructions.jsonl", "selfinstruct-user", "Self-Instruct user-oriented tasks"),
        ] {
            let full = try path(file)
            let lines = try LineReader(path: full)
            while let line = try lines.nextContentLine() {
                guard case .object(let record)? = try? JSONParser.parse(bytes: Array(line)), let text = record["instruction"]?.stringValue else {
                    throw LocatedError(path: full, line: lines.lineNumber, message: "expected a JSON object with an 'instruction' string")
                }
                add(text, harmful: false, source: source, set: set, location: "\(file):\(lines.lineNumber)")
            }
        }
        return texts
    }

    /// The key two texts share when they are the same request: lower case, runs of white space
    /// as one space, no trailing punctuation or quotes.
    public static func duplicateKey(_ text: String) -> String {
        let words = text.lowercased().split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        return String(words.reversed().drop { ".?!\"' ".contains($0) }.reversed())
    }
}

extension TrainingSets {
    /// The texts the harm judgement learns from and is measured on: the benchmarks' labelled
    /// queries and the training sets, each request once. A request in several sets stays in the
    /// first (so a source held out has no copy elsewhere); one labelled harmful in one set and
    /// harmless in another is dropped from all, as neither label is sure.
    public struct Corpus: Sendable {
        public var texts: [Text] = []
        public var duplicates = 0
        public var conflicting = 0
    }

    public static func corpus(benchmarks examples: [DetectorTraining.Example], training: [Text]) -> Corpus {
        var all: [Text] = []
        for example in examples {
            all.append(Text(text: example.text, harmful: example.harmful, source: example.source, set: example.set, location: example.source))
        }
        all += training
        var first: [String: Int] = [:]
        var labels: [String: Set<Bool>] = [:]
        var corpus = Corpus()
        var kept: [Text] = []
        for text in all {
            let key = duplicateKey(text.text)
            if let harmful = text.harmful { labels[key, default: []].insert(harmful) }
            if first[key] != nil {
                corpus.duplicates += 1
                continue
            }
            first[key] = kept.count
            kept.append(text)
        }
        for text in kept {
            if labels[duplicateKey(text.text)]?.count == 2 {
                corpus.conflicting += 1
            } else {
                corpus.texts.append(text)
            }
        }
        return corpus
    }
}
