import Leakless

/// The review app's one page: every style and script inline. Keys: a accept, r reject (then a
/// number or a typed reason), e edit the query, u undo, j/k or the arrows to move, / to the
/// queue filter.
enum ReviewPage {
    static func html(reviewer: String, pipeline: String) -> String {
        let head = escapeHTML
        return #"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="generator" content="leakless">
        <title>leakless review</title><link rel="icon" href="data:,">
        <style>
        *{box-sizing:border-box}
        body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
        header{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center;padding:.6em 1.2em;background:#263238;color:#eceff1}
        header h1{font-size:1.05em;margin:0}header select,header input{font:inherit;padding:.1em .3em}
        #progress{margin-left:auto;font-variant-numeric:tabular-nums}
        main{display:grid;grid-template-columns:minmax(280px,520px) 1fr;gap:1.2em;padding:1.2em;max-width:1400px}
        #image img{max-width:100%;max-height:70vh;border:1px solid #ccc;background:#fff}
        #query{font-size:1.3em;font-weight:600;margin:.2em 0 .6em;padding:.4em .6em;background:#fff;border-left:4px solid #5c6bc0}
        mark{background:#ffd54f;padding:0 .1em}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:.25em 1em;margin:.6em 0}dt{color:#666}dd{margin:0}
        .decision{display:inline-block;padding:.1em .5em;border-radius:3px;color:#fff;font-size:.9em}
        .accept,.edit{background:#2e7d32}.reject{background:#c62828}.none{background:#9e9e9e}
        #keys{padding:.5em 1.2em;border-top:1px solid #ddd;background:#fff;position:sticky;bottom:0}
        kbd{border:1px solid #aaa;border-bottom-width:2px;border-radius:3px;padding:0 .35em;font:12px monospace;background:#f5f5f5}
        .panel{display:none;margin:.6em 0;padding:.6em;background:#fff;border:1px solid #bbb}.panel.open{display:block}
        .panel ol{margin:.3em 0 .5em 1.4em;padding:0}textarea,#reason-text{width:100%;font:inherit}
        #status{min-height:1.4em}#status.error{color:#c62828;font-weight:600}#status.warn{color:#ef6c00;font-weight:600}
        ul.dups{margin:.2em 0;padding-left:1.2em}small{color:#666}
        </style></head>
        <body data-ready="no">
        <header>
          <h1>leakless review</h1><span>\#(head(pipeline))</span>
          <label>reviewer <input id="reviewer" size="12" value="\#(head(reviewer))"></label>
          <label>queue <select id="queue">
            <option value="unreviewed">not yet reviewed by you</option><option value="all">all pairs</option>
            <option value="mine">reviewed by you</option><option value="disagreements">disagreements</option>
            <option value="rejected">rejected</option><option value="edited">edited</option>
          </select></label>
          <label>category <select id="category"><option value="">all</option></select></label>
          <label>detector <select id="evidence"><option value="">all</option><option value="words">words flagged</option><option value="none">nothing flagged</option></select></label>
          <span id="progress"></span>
        </header>
        <main>
          <section id="image"></section>
          <section>
            <div><small id="position"></small></div>
            <div id="query"></div>
            <div id="mine"></div>
            <div id="reject-panel" class="panel"><b>Reject: why?</b> <small>a number, or type a reason and press Enter; Esc cancels</small><ol id="reasons"></ol><input id="reason-text" placeholder="another reason"></div>
            <div id="edit-panel" class="panel"><b>Edit the query</b> <small>Enter saves (Shift+Enter: new line), Esc cancels; the original is kept</small><textarea id="edit-text" rows="3"></textarea></div>
            <div id="status" role="status"></div>
            <dl id="facts"></dl>
          </section>
        </main>
        <div id="keys"><kbd>a</kbd> accept · <kbd>r</kbd> reject · <kbd>e</kbd> edit query · <kbd>u</kbd> undo · <kbd>j</kbd>/<kbd>→</kbd> next · <kbd>k</kbd>/<kbd>←</kbd> previous · <kbd>/</kbd> queue</div>
        <script>
        "use strict";
        const params = new URLSearchParams(location.search);
        let reviewer = params.get("reviewer") || document.getElementById("reviewer").value;
        document.getElementById("reviewer").value = reviewer;
        let pairs = [], reasons = [], state = {decisions: {}}, queue = [], cursor = -1, mode = "browse", saving = false;
        const $ = id => document.getElementById(id);
        const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

        function highlight(query, evidence) {
          const spans = [];
          const lower = query.toLowerCase();
          for (const e of evidence) {
            const at = lower.indexOf(e.span.toLowerCase());
            if (at >= 0) spans.push([at, at + e.span.length, e.source + ": " + e.term]);
          }
          spans.sort((a, b) => a[0] - b[0]);
          let out = "", last = 0;
          for (const [from, to, title] of spans) {
            if (from < last) continue;
            out += esc(query.slice(last, from)) + '<mark title="' + esc(title) + '">' + esc(query.slice(from, to)) + "</mark>";
            last = to;
          }
          return out + esc(query.slice(last));
        }

        function decisionsOf(pair) { return state.decisions[pair.id] || {}; }
        function matches(pair) {
          const d = decisionsOf(pair), mine = d[reviewer], all = Object.values(d);
          const q = $("queue").value, cat = $("category").value, ev = $("evidence").value;
          if (cat && pair.category !== cat) return false;
          if (ev === "words" && pair.evidence.length === 0) return false;
          if (ev === "none" && pair.evidence.length > 0) return false;
          switch (q) {
            case "unreviewed": return !mine;
            case "mine": return !!mine;
            case "disagreements": return new Set(all.map(x => x.decision === "reject")).size > 1;
            case "rejected": return all.some(x => x.decision === "reject");
            case "edited": return all.some(x => x.decision === "edit");
            default: return true;
          }
        }
        function rebuildQueue(keep) {
          const current = cursor >= 0 ? queue[cursor] : undefined;
          queue = pairs.filter(matches).map(p => p.position);
          if (keep !== undefined) {
            const at = queue.findIndex(p => p >= keep);
            cursor = at >= 0 ? at : (queue.length ? 0 : -1);
          } else if (current !== undefined && queue.includes(current)) {
            cursor = queue.indexOf(current);
          } else {
            cursor = queue.length ? 0 : -1;
          }
        }

        function render() {
          const s = state;
          $("progress").textContent = (s.reviewed_by_you ?? 0) + " of " + pairs.length + " reviewed by " + reviewer +
            " · " + (s.rejected ?? 0) + " rejected · " + (s.disagreements ?? 0) + " disagreements · " + (s.agreement ? s.agreement.summary : "");
          if (cursor < 0) {
            $("image").innerHTML = ""; $("query").textContent = "Nothing left in this queue.";
            $("facts").innerHTML = ""; $("mine").innerHTML = ""; $("position").textContent = "";
            document.body.dataset.pair = "";
            return;
          }
          const pair = pairs[queue[cursor]];
          document.body.dataset.pair = pair.id;
          history.replaceState(null, "", "?reviewer=" + encodeURIComponent(reviewer) + "#" + pair.id);
          $("position").textContent = "pair " + (pair.position + 1) + " of " + pairs.length + " · " + (cursor + 1) + " of " + queue.length + " in this queue";
          $("image").innerHTML = pair.image ? '<img id="pair-image" alt="' + esc(pair.image_description) + '" src="' + esc(pair.image) + '">' : "<p>no image</p>";
          const d = decisionsOf(pair), mine = d[reviewer];
          $("query").innerHTML = highlight(pair.query, pair.evidence);
          $("mine").innerHTML = "Your decision: " + (mine ? '<span class="decision ' + mine.decision + '">' + esc(mine.decision) + "</span> " +
            esc(mine.reason || "") + (mine.query ? " → <i>" + esc(mine.query) + "</i>" : "") : '<span class="decision none">none yet</span>');
          const others = Object.entries(d).filter(([name]) => name !== reviewer)
            .map(([name, x]) => esc(name) + ': <span class="decision ' + x.decision + '">' + esc(x.decision) + "</span> " + esc(x.reason || "") + (x.query ? " → <i>" + esc(x.query) + "</i>" : ""));
          const det = pair.detection || {};
          const evidence = pair.evidence.map(e => "<mark>" + esc(e.span) + "</mark> (" + esc(e.source) + ": " + esc(e.term) + ")").join(", ");
          const rows = [
            ["other reviewers", others.join("<br>") || "none"],
            ["image description", esc(pair.image_description)],
            ["safety reason", esc(pair.safety_reason)],
            ["category", esc(pair.category) + " / " + esc(pair.sub_category)],
            ["element", esc(pair.element)],
            ["image source", esc(pair.source) + (pair.image_source ? " <small>" + esc(pair.image_source) + "</small>" : "") + (pair.path ? " <small>(" + esc(pair.path) + " path)</small>" : "")],
            ["detector", esc(det.verdict || "?") + " <small>" + esc(det.detector || "") + (det.score !== undefined ? ", score " + esc(det.score) : "") +
              (det.harm_probability !== undefined ? ", harm " + esc(det.harm_probability) : "") + (det.leak_probability !== undefined ? ", leak " + esc(det.leak_probability) : "") + "</small>"],
            ["words the lexicon flags", evidence || "none"],
            ["categoriser", categorised(pair)],
            ["filter", pair.filter ? esc(JSON.stringify(pair.filter)) : "passed"],
            ["near duplicates", pair.duplicates.length ? '<ul class="dups">' + pair.duplicates.map(x => "<li>" + esc(x.reason) + ": " + esc(x.query || x.detail) + "</li>").join("") + "</ul>" : "none"],
            ["seed query", esc(pair.harmful_query)],
          ];
          $("facts").innerHTML = rows.map(([k, v]) => "<dt>" + k + "</dt><dd>" + v + "</dd>").join("");
        }

        function categorised(pair) {
          const c = pair.categorise;
          if (!c) return "not run";
          const said = esc(c.category) + " / " + esc(c.sub_category) + (c.nearest ? " <small>nearest: " + esc(c.nearest) +
            (c.similarity !== undefined ? ", " + esc(c.similarity) : "") + "</small>" : "");
          if (c.agrees) return said + " (agrees)";
          const own = c.before || {category: pair.category, sub_category: pair.sub_category};
          return said + ' <span class="decision reject">disagrees</span> with ' + esc(own.category) + " / " + esc(own.sub_category) +
            (c.applied ? " (applied)" : " (the pair keeps its own)");
        }

        function status(text, kind) { $("status").textContent = text; $("status").className = kind || ""; }

        async function call(method, path, body) {
          const response = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body ? JSON.stringify(body) : undefined});
          const value = await response.json();
          if (!response.ok) throw new Error(value.error || response.statusText);
          return value;
        }
        async function refresh() {
          state = await call("GET", "/api/state?reviewer=" + encodeURIComponent(reviewer));
        }
        async function decide(decision, extra) {
          if (cursor < 0 || saving) return;
          const pair = pairs[queue[cursor]];
          saving = true;
          status("saving…");
          try {
            const answer = await call("POST", "/api/decide", Object.assign({reviewer, pair: pair.id, decision}, extra || {}));
            state = answer.state;
            const saved = Number(document.body.dataset.saved || 0) + 1;
            document.body.dataset.saved = String(saved);
            if (answer.detector && answer.detector.verdict && answer.detector.verdict !== "clean") {
              status("Saved, but the detector flags the edited query (" + answer.detector.verdict + "): " + answer.detector.detail + ". The export leaves it out unless it is edited again.", "warn");
            } else {
              status("Saved: " + decision + " on pair " + (pair.position + 1) + ".");
            }
            rebuildQueue(pair.position + 1);
            render();
          } catch (error) {
            status("Not saved: " + error.message, "error");
          } finally { saving = false; }
        }
        async function undo() {
          if (saving) return;
          saving = true;
          try {
            const answer = await call("POST", "/api/undo", {reviewer});
            state = answer.state;
            document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
            const pair = pairs.find(p => p.id === answer.undone);
            rebuildQueue(pair ? pair.position : undefined);
            if (pair && !queue.includes(pair.position)) { $("queue").value = "all"; rebuildQueue(pair.position); }
            status("Undone: your last decision, on pair " + (pair ? pair.position + 1 : "?") + ".");
            render();
          } catch (error) { status("Not undone: " + error.message, "error"); } finally { saving = false; }
        }
        function move(step) {
          if (!queue.length) return;
          cursor = (cursor + step + queue.length) % queue.length;
          status("");
          render();
        }
        function openPanel(name) {
          mode = name;
          $("reject-panel").classList.toggle("open", name === "reject");
          $("edit-panel").classList.toggle("open", name === "edit");
          if (name === "reject") { $("reason-text").value = ""; $("reason-text").blur(); }
          if (name === "edit") { const t = $("edit-text"); const pair = pairs[queue[cursor]]; const mine = decisionsOf(pair)[reviewer];
            t.value = mine && mine.query ? mine.query : pair.query; t.focus(); t.select(); }
        }
        function closePanel() { openPanel("browse"); document.activeElement && document.activeElement.blur(); }

        document.addEventListener("keydown", event => {
          if (event.ctrlKey || event.metaKey || event.altKey) { if (!(mode === "edit" && event.key === "Enter")) return; }
          const target = event.target;
          if (mode === "edit") {
            if (event.key === "Escape") { closePanel(); event.preventDefault(); }
            else if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); const text = $("edit-text").value.trim(); closePanel(); decide("edit", {query: text}); }
            return;
          }
          if (mode === "reject") {
            if (event.key === "Escape") { closePanel(); event.preventDefault(); return; }
            if (target === $("reason-text")) {
              if (event.key === "Enter") { event.preventDefault(); const text = $("reason-text").value.trim(); if (text) { closePanel(); decide("reject", {reason: text}); } }
              return;
            }
            const number = Number(event.key);
            if (number >= 1 && number <= reasons.length) { event.preventDefault(); closePanel(); decide("reject", {reason: reasons[number - 1]}); }
            else if (event.key.length === 1) { $("reason-text").focus(); }
            return;
          }
          if (target.tagName === "INPUT" || target.tagName === "SELECT" || target.tagName === "TEXTAREA") {
            if (event.key === "Escape") target.blur();
            return;
          }
          switch (event.key) {
            case "a": decide("accept"); break;
            case "r": if (cursor >= 0) openPanel("reject"); break;
            case "e": if (cursor >= 0) openPanel("edit"); break;
            case "u": undo(); break;
            case "j": case "ArrowRight": move(1); break;
            case "k": case "ArrowLeft": move(-1); break;
            case "/": $("queue").focus(); break;
            default: return;
          }
          event.preventDefault();
        });
        for (const id of ["queue", "category", "evidence"]) $(id).addEventListener("change", () => { rebuildQueue(); render(); $(id).blur(); });
        $("reviewer").addEventListener("change", async () => { reviewer = $("reviewer").value.trim() || reviewer; await refresh(); rebuildQueue(); render(); });

        (async () => {
          try {
            const data = await call("GET", "/api/pairs");
            pairs = data.pairs; reasons = data.reasons;
            $("reasons").innerHTML = reasons.map(r => "<li>" + esc(r) + "</li>").join("");
            for (const c of [...new Set(pairs.map(p => p.category))].sort()) $("category").insertAdjacentHTML("beforeend", '<option value="' + esc(c) + '">' + esc(c) + "</option>");
            await refresh();
            const wanted = location.hash.slice(1), found = pairs.find(p => p.id === wanted);
            rebuildQueue(found ? found.position : undefined);
            if (found && !queue.includes(found.position)) { $("queue").value = "all"; rebuildQueue(found.position); }
            render();
            document.body.dataset.ready = "yes";
          } catch (error) { status("Cannot load the review: " + error.message, "error"); }
        })();
        </script>
        </body></html>
        """#
    }
}
