"""Development probe: a logistic model on frozen features (scripts/minilm_features.py, scripts/smollm2_features.py), each source held out in turn; each goal set flagged at 0.5 and at a threshold fitted on the other sources (in-sample, optimistic).
    python3 scripts/probe_features.py CORPUS.jsonl FEATURES.pt mean6[,mean3...] [L2]"""
import json, sys, torch, bisect
rows = [json.loads(l) for l in open(sys.argv[1])]
feats = torch.load(sys.argv[2])
keys = sys.argv[3].split(",")
X = torch.cat([torch.nn.functional.normalize(feats[k], dim=-1) if k.startswith("mean") or k.startswith("last") else feats[k] for k in keys], 1).double()
X = (X - X.mean(0)) / (X.std(0) + 1e-6)
lab = [r["harmful"] for r in rows]
sources = sorted({r["source"] for r, l in zip(rows, lab) if l is not None})
GOALS = ["XSTest safe","JailbreakBench benign","VLGuard safe_instruction (safe images)","MM-SafetyBench Rephrased Question","VLSBench instruction","Everyday requests","Self-Instruct seed tasks","Self-Instruct user-oriented tasks","XSTest unsafe contrasts","SimpleSafetyTests","AdvBench","StrongREJECT","HarmBench standard","CatQA","JailbreakBench harmful","MM-SafetyBench Question, 01-07 and 09"]
def fit(idx):
    counts = {}
    for i in idx: counts[(lab[i], rows[i]["set"])] = counts.get((lab[i], rows[i]["set"]), 0) + 1
    ncls = {c: len({s for (l, s) in counts if l == c}) for c in (True, False)}
    w = torch.tensor([0.5 / ncls[lab[i]] / counts[(lab[i], rows[i]["set"])] for i in idx], dtype=torch.float64)
    x = X[idx]; y = torch.tensor([1.0 if lab[i] else 0.0 for i in idx], dtype=torch.float64)
    beta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True); b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([beta, b], max_iter=200, line_search_fn="strong_wolfe")
    lam = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-2
    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(x @ beta + b, y, reduction="none") * w).sum() + lam * (beta ** 2).sum() / 2 * w.sum() / len(idx)
        loss.backward(); return loss
    opt.step(closure)
    return beta.detach(), b.detach()
res = {}
for src in sources:
    tr = [i for i in range(len(rows)) if lab[i] is not None and rows[i]["source"] != src]
    te = [i for i in range(len(rows)) if rows[i]["source"] == src]
    beta, b = fit(tr)
    p_tr = torch.sigmoid(X[tr] @ beta + b).tolist()
    harmless = {}
    for i, p in zip(tr, p_tr):
        if not lab[i]: harmless.setdefault(rows[i]["set"], []).append(p)
    # threshold: mean harmless-set rate <= 5% (in-sample, so optimistic)
    sets = [sorted(v) for v in harmless.values() if len(v) >= 20]
    thr = 0.5
    for c in [0.5] + [x / 1000 for x in range(501, 1000)]:
        if sum((len(s) - bisect.bisect_left(s, c)) / len(s) for s in sets) / len(sets) <= 0.05: thr = c; break
    p = torch.sigmoid(X[te] @ beta + b).tolist()
    by = {}
    for i, q in zip(te, p): by.setdefault(rows[i]["set"], []).append(q)
    for s, v in by.items(): res[s] = (sum(q >= 0.5 for q in v) / len(v), sum(q >= thr for q in v) / len(v), thr)
for s in GOALS:
    if s in res:
        a, t, thr = res[s]
        print(f"{s:45s} 0.5: {a*100:5.1f}%  cal({thr:.2f}): {t*100:5.1f}%")
