import Foundation
import LeaklessCore

/// What the HTML and Markdown the project writes share (the run report, the audit, the
/// evaluation): one page frame and style, escaping, and percentages.
public enum ReportPage {
    /// Whether `folder` may be replaced by a new report: absent, empty, or a report written
    /// before (only `index.html`, made by leakless, and `thumbs/`). Anything else is a user's.
    public static func mayReplace(_ folder: String) -> Bool {
        guard FileSystem.exists(folder) else { return true }
        guard FileSystem.isDirectory(folder), let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return false }
        if names.isEmpty { return true }
        guard Set(names).isSubset(of: ["index.html", "thumbs"]), names.contains("index.html"),
            let page = try? FileSystem.readText(FileSystem.join(folder, "index.html"))
        else { return false }
        return page.contains("<meta name=\"generator\" content=\"leakless\">")
    }

    /// A complete page with the report's style; nothing is loaded from elsewhere.
    public static func page(title: String, body: String, head: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="generator" content="leakless"><title>\(escapeHTML(title))</title>
        \(head)
        <style>
        body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
        table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
        td.n{text-align:right;font-variant-numeric:tabular-nums}mark{background:#ffd54f;padding:0 .1em}
        .bar{display:inline-block;height:.8em;background:#5c6bc0}tr.leaks .bar{background:#ef6c00}tr.harmful-alone .bar{background:#c62828}
        tr.meaningless .bar{background:#9e9e9e}small{color:#666}h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}
        </style></head><body>
        \(body)</body></html>

        """
    }
}

public func escapeHTML(_ text: String) -> String {
    var result = ""
    for character in text {
        switch character {
        case "&": result += "&amp;"
        case "<": result += "&lt;"
        case ">": result += "&gt;"
        case "\"": result += "&quot;"
        default: result.append(character)
        }
    }
    return result
}

func escapeTable(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}

public func percent(_ rate: Double) -> String { String(format1: rate * 100, digits: 1) + "%" }

