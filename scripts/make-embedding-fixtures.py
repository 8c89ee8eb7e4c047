"""Makes the embedding test fixtures once: 220 sentences from the development benchmarks
(../shared/benchmarks) and their all-MiniLM-L6-v2 embeddings as sentence-transformers computes
them (float32, little-endian, 384 per sentence). Needs sentence-transformers and torch; the
fixtures, not this tool, are committed.
    python3 scripts/make-embedding-fixtures.py ../shared/benchmarks models/all-MiniLM-L6-v2"""
import glob, json, sys
import numpy as np
from sentence_transformers import SentenceTransformer

benchmarks, model = sys.argv[1], sys.argv[2]
out = "Tests/LeaklessTests/Fixtures/embeddings"
vls = json.load(open(f"{benchmarks}/vlsbench/data.json"))
sentences = [r["instruction"] for r in vls[::19]][:110] + [r["image_description"] for r in vls[7::41]][:40]
mm = []
for path in sorted(glob.glob(f"{benchmarks}/mm-safetybench/0*.json")):
    mm += [q["Question"] for q in json.load(open(path)).values()][::37]
sentences += mm[:40]
vlg = json.load(open(f"{benchmarks}/vlguard/test.json"))
for record in vlg[::47]:
    for pair in record["instr-resp"]:
        sentences += [v for k, v in pair.items() if "instruction" in k]
sentences = [s.replace("\n", " ").strip() for s in sentences if s and s.strip()][:220]
sentences += ["Café naïve résumé, 東京 and an emoji 😀: does it tokenize?", "x" * 300, "a " * 400]
embedder = SentenceTransformer(model, device="cpu")
vectors = embedder.encode(sentences, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
open(f"{out}/sentences.txt", "w").write("\n".join(sentences) + "\n")
vectors.astype("<f4").tofile(f"{out}/reference.f32")
print(len(sentences), vectors.shape)
