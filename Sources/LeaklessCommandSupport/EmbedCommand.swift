import ArgumentParser
import Foundation
import Leakless
import LeaklessCore
import LeaklessEmbedding

public struct EmbedCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the sentence embedding (all-MiniLM-L6-v2) of each line of a text file, one JSON array a line.")

    @Argument(help: "A text file, one sentence a line ('-': standard input).")
    var file: String

    @Option(help: "The sentence-transformers model folder (scripts/setup unpacks it).")
    var model: String = SentenceEmbedder.defaultFolder

    @Option(help: "Threads.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    public init() {}

    public func run() throws {
        try reportingErrors {
            let text = file == "-" ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : try FileSystem.readText(file)
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let sentences = lines.last == "" ? Array(lines.dropLast()) : lines
            let embedder = try SentenceEmbedder(folder: model, threads: threads)
            for vector in embedder.embed(sentences) {
                print("[" + vector.map { String($0) }.joined(separator: ",") + "]")
            }
        }
    }
}
