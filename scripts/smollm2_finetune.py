"""Development probe: SmolLM2-135M-Instruct's upper layers fine-tuned as a harm classifier, each source held out
in turn, on the protocol of scripts/train_harm_classifier.py (the same corpus, request forms, set weights, stacker
and calibration), to compare with the shipped MiniLM classifier.
    python3 scripts/smollm2_finetune.py --corpus CORPUS.jsonl --gguf path/to/SmolLM2-135M-Instruct.Q4_1.gguf \
        --report R.json --only xstest,jailbreakbench --out-of-fold OOF.jsonl
The first --frozen layers run once; --tuned layers above them are trained with a logistic head over their pooled
states (--pool: the mean of the tokens, the last token or both; --assistant: the texts end with the opening of
the assistant's turn), standardised by fixed statistics (needs transformers, gguf from PyPI)."""
import argparse, copy, json, os, random, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_harm_classifier as base  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from transformers.masking_utils import create_causal_mask  # noqa: E402


def padded(hidden, lengths, group, width):
    n = max(lengths[i] for i in group)
    x = torch.zeros(len(group), n, width)
    mask = torch.zeros(len(group), n, dtype=torch.long)
    for row, i in enumerate(group):
        x[row, : lengths[i]] = hidden[i]
        mask[row, : lengths[i]] = 1
    return x, mask


def run_layers(lm, layers, x, mask):
    positions = torch.arange(x.shape[1])[None]
    causal = create_causal_mask(config=lm.config, inputs_embeds=x, attention_mask=mask, cache=None, position_ids=positions)
    rotary = lm.rotary_emb(x, position_ids=positions)
    for layer in layers:
        x = layer(x, attention_mask=causal, position_embeddings=rotary, position_ids=positions)
    return x


def pool(x, mask, how):
    m = mask.float()[..., None]
    mean = (x * m).sum(1) / m.sum(1)
    last = x[torch.arange(x.shape[0]), mask.sum(1) - 1]
    return {"mean": mean, "last": last, "both": torch.cat([mean, last], -1)}[how]


class Classifier(nn.Module):
    def __init__(self, lm, first, count, mean, std, pool):
        super().__init__()
        self.pool = pool
        self.lm = lm
        self.layers = nn.ModuleList(copy.deepcopy(lm.layers[first + k]) for k in range(count))
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.head = nn.Linear(mean.shape[0], 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def pooled(self, x, mask):
        x = run_layers(self.lm, self.layers, x, mask)
        return (pool(x, mask, self.pool) - self.mean) / self.std

    def forward(self, x, mask):
        return self.head(self.pooled(x, mask)).squeeze(-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--gguf", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--only", default="")
    p.add_argument("--out-of-fold")
    p.add_argument("--frozen", type=int, default=18)
    p.add_argument("--tuned", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--rate", type=float, default=5e-5)
    p.add_argument("--batch-tokens", type=int, default=2048)
    p.add_argument("--set-cap", type=int, default=600)
    p.add_argument("--reframe", type=int, default=2)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pool", choices=["mean", "last", "both"], default="mean")
    p.add_argument("--assistant", action="store_true", help="end each text with the assistant's turn opening (its last token is where a reply is decided)")
    p.add_argument("--cache", help="the frozen layers' states: read if present, else written")
    args = p.parse_args()
    args.set_weight, args.clean_rate, args.trim = "equal", 0.05, 0
    torch.set_num_threads(args.threads)
    started = time.time()

    rows = [json.loads(line) for line in open(args.corpus, encoding="utf-8") if line.strip()]
    if args.reframe > 0:
        rows += base.reframed(rows, args.reframe)
    folder, name = args.gguf.rsplit("/", 1)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.eval()
    lm = model.model
    for q in lm.parameters():
        q.requires_grad_(False)
    width = lm.config.hidden_size
    ids = [tokenizer(f"<|im_start|>user\n{r['text']}<|im_end|>\n", truncation=True, max_length=96)["input_ids"] for r in rows]
    if args.assistant:
        opening = tokenizer("<|im_start|>assistant\n")["input_ids"]
        ids = [i + opening for i in ids]
    lengths = [len(i) for i in ids]
    print(f"{len(rows)} texts, {sum(lengths)} tokens; frozen {args.frozen}, tuned {args.tuned}", file=sys.stderr)

    if args.cache and os.path.exists(args.cache):
        hidden = torch.load(args.cache)
    else:
        hidden = [None] * len(rows)
        with torch.no_grad():
            for k, group in enumerate(base.batches(lengths, range(len(rows)), 4096, False, None)):
                n = max(lengths[i] for i in group)
                tokens = torch.zeros(len(group), n, dtype=torch.long)
                mask = torch.zeros(len(group), n, dtype=torch.long)
                for row, i in enumerate(group):
                    tokens[row, : lengths[i]] = torch.tensor(ids[i])
                    mask[row, : lengths[i]] = 1
                x = run_layers(lm, lm.layers[: args.frozen], lm.embed_tokens(tokens), mask)
                for row, i in enumerate(group):
                    hidden[i] = x[row, : lengths[i]].clone()
                if k % 50 == 0:
                    print(f"  frozen: {sum(h is not None for h in hidden)} of {len(rows)}, {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        if args.cache:
            torch.save(hidden, args.cache)
    print(f"frozen layers in {time.time() - started:.0f} s", file=sys.stderr, flush=True)

    labelled, _, labels, _, chosen = base.training_choice(rows, args.set_cap, args.seed)

    # A fixed standardisation of the pooled states (the untuned layers' on a sample): the residual stream of a
    # language model has a few dimensions thousands of times larger than the rest.
    with torch.no_grad():
        sample = random.Random(1).sample(chosen, min(2000, len(chosen)))
        pooled = []
        for group in base.batches(lengths, sample, 8192, False, None):
            x, mask = padded(hidden, lengths, group, width)
            y = run_layers(lm, lm.layers[args.frozen: args.frozen + args.tuned], x, mask)
            pooled.append(pool(y, mask, args.pool))
        pooled = torch.cat(pooled)
        mean, std = pooled.mean(0), pooled.std(0) + 1e-3

    def train(indices):
        torch.manual_seed(args.seed)
        r = random.Random(args.seed)
        w = [0.0] * len(rows)
        for i, value in base.set_weights(rows, labels, indices, "equal").items():
            w[i] = value
        clf = Classifier(lm, args.frozen, args.tuned, mean, std, args.pool)
        for q in clf.layers.parameters():
            q.requires_grad_(True)
        opt = torch.optim.AdamW([
            {"params": clf.layers.parameters(), "lr": args.rate, "weight_decay": 0.01},
            {"params": clf.head.parameters(), "lr": args.rate * 20, "weight_decay": 0.01},
        ])
        plan = [base.batches(lengths, indices, args.batch_tokens, True, r) for _ in range(args.epochs)]
        total, step = sum(len(x) for x in plan), 0
        clf.train()
        for epoch in plan:
            for group in epoch:
                x, mask = padded(hidden, lengths, group, width)
                y = torch.tensor([labels[i] for i in group])
                sw = torch.tensor([w[i] for i in group])
                scale = min(1.0, (step + 1) / (0.1 * total)) * (1 - step / total)
                for g, b in zip(opt.param_groups, [args.rate, args.rate * 20]):
                    g["lr"] = b * scale
                loss = (F.binary_cross_entropy_with_logits(clf(x, mask), y, reduction="none") * sw).sum() / sw.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step % 100 == 0:
                    print(f"    step {step}/{total} loss {loss.item():.4f} {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        clf.eval()
        return clf

    @torch.no_grad()
    def scores(clf, indices):
        out = {}
        for group in base.batches(lengths, indices, 8192, False, None):
            x, mask = padded(hidden, lengths, group, width)
            for i, value in zip(group, clf(x, mask).tolist()):
                out[i] = value
        return out

    sources = sorted({rows[i]["source"] for i in labelled})
    only = [s for s in args.only.split(",") if s] or sources
    oof = {}
    for source in only:
        t = time.time()
        clf = train([i for i in chosen if rows[i]["source"] != source])
        oof.update(scores(clf, [i for i, r in enumerate(rows) if r["source"] == source and not r.get("augmented")]))
        print(f"  fold {source}: {time.time() - t:.0f} s", file=sys.stderr, flush=True)
        if args.out_of_fold:
            base.write_out_of_fold(args.out_of_fold, rows, oof)
    report = {"frozen": args.frozen, "tuned": args.tuned, "epochs": args.epochs, "rate": args.rate, "pool": args.pool, "assistant": args.assistant}
    base.finish(rows, labels, oof, only, None, report, args)
    report["seconds"] = round(time.time() - started, 1)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
