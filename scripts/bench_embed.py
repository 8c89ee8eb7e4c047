"""sentence-transformers on PyTorch CPU over the same sentences, for `leakless-dev bench-embed`:
prints one JSON object with the seconds and the peak resident memory.
    python bench_embed.py MODEL SENTENCES THREADS"""
import json, resource, sys, time
import torch
from sentence_transformers import SentenceTransformer

model, sentences, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
texts = open(sentences, encoding="utf-8").read().split("\n")[:-1]
embedder = SentenceTransformer(model, device="cpu")
embedder.encode(texts[:64], batch_size=32)  # warm up
started = time.perf_counter()
embedder.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads(), "torch": torch.__version__}))
