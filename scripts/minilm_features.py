"""Development probe: frozen all-MiniLM-L6-v2 mean-pooled states (layers 3 and 6) of a corpus, for scripts/probe_features.py.
    python3 scripts/minilm_features.py CORPUS.jsonl OUT.pt models/all-MiniLM-L6-v2"""
import json, sys, torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from train_harm_classifier import Layer, embed_tokens, batches
from safetensors.torch import load_file
from tokenizers import Tokenizer
torch.set_num_threads(1)
rows = [json.loads(l) for l in open(sys.argv[1])]
m = sys.argv[3]
tok = Tokenizer.from_file(m + "/tokenizer.json"); tok.enable_truncation(256); tok.no_padding()
w = load_file(m + "/model.safetensors"); w = {k[5:] if k.startswith("bert.") else k: v for k, v in w.items()}
layers = []
for i in range(6):
    l = Layer(); l.load(w, i); l.eval(); layers.append(l)
ids = [e.ids for e in tok.encode_batch([r["text"] for r in rows])]
lengths = [len(i) for i in ids]
out = {f"mean{k}": torch.zeros(len(rows), 384) for k in (3, 6)}
with torch.no_grad():
    for group in batches(lengths, range(len(rows)), 8192, False, None):
        n = max(lengths[i] for i in group)
        t = torch.zeros(len(group), n, dtype=torch.long); mask = torch.zeros(len(group), n, dtype=torch.bool)
        for r, i in enumerate(group): t[r, :lengths[i]] = torch.tensor(ids[i]); mask[r, :lengths[i]] = True
        x = embed_tokens(w, t); mm = mask.float()[..., None]
        for k, layer in enumerate(layers, 1):
            x = layer(x, mask)
            if k in (3, 6):
                pooled = (x * mm).sum(1) / mm.sum(1)
                for r, i in enumerate(group): out[f"mean{k}"][i] = pooled[r]
torch.save(out, sys.argv[2])
