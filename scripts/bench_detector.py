"""sentence-transformers on PyTorch CPU running what leakless's harm classifier runs (the same
encoder layers, mean pooling, unit length, the logistic head), over the same queries, for
`leakless-dev bench-detector`: prints one JSON object with the seconds and the peak resident memory.

    python bench_detector.py MODEL_DIR CLASSIFIER.safetensors QUERIES THREADS [--base]

With --base, the full base model (all of its layers) stands in for the classifier's encoder: what a
sentence-transformers user would run to embed the queries at all.
"""
import json, os, resource, shutil, sys, tempfile, time

import torch
from safetensors.torch import load_file, save_file
from sentence_transformers import SentenceTransformer


def classifier_model(base, classifier):
    """A sentence-transformers folder whose BERT is the base model's frozen layers, then the tuned ones."""
    tuned = load_file(classifier)
    with open(classifier, "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    metadata = header.get("__metadata__", {})
    layers = int(metadata["frozen_layers"]) + int(metadata["tuned_layers"])
    folder = tempfile.mkdtemp(prefix="leakless-bench-detector-")
    for name in os.listdir(base):
        if name != "model.safetensors":
            source = os.path.join(base, name)
            (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, os.path.join(folder, name))
    weights = load_file(os.path.join(base, "model.safetensors"))
    merged = {}
    for name, value in weights.items():
        plain = name[5:] if name.startswith("bert.") else name
        if plain.startswith("encoder.layer.") and int(plain.split(".")[2]) >= layers:
            continue
        merged[name] = tuned.get(plain, value)
    save_file(merged, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    config["num_hidden_layers"] = layers
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return folder, tuned["harm.weight"].numpy(), float(tuned["harm.bias"][0])


def main():
    base, classifier, queries, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    use_base = "--base" in sys.argv[5:]
    torch.set_num_threads(threads)
    texts = open(queries, encoding="utf-8").read().split("\n")[:-1]
    if use_base:
        folder, weight, bias = base, None, 0.0
    else:
        folder, weight, bias = classifier_model(base, classifier)
    embedder = SentenceTransformer(folder, device="cpu")
    embedder.encode(texts[:64], batch_size=32)  # warm up
    started = time.perf_counter()
    vectors = embedder.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    if weight is not None:
        probabilities = 1 / (1 + __import__("numpy").exp(-(vectors @ weight + bias)))
    seconds = time.perf_counter() - started
    if not use_base:
        shutil.rmtree(folder)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "layers": embedder[0].auto_model.config.num_hidden_layers}))


if __name__ == "__main__":
    main()
