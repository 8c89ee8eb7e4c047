"""girth's two-parameter logistic fit (marginal maximum likelihood) over the same response
matrix, for `leakless-dev bench-select`: prints one JSON object with the seconds, the peak
resident memory and the fitted discriminations and difficulties.
    python bench_select.py MATRIX ITEMS MODELS
MATRIX holds ITEMS x MODELS bytes, 1 for a safe reply and 0 for an unsafe one."""
import json, resource, sys, time
import numpy as np
import girth

path, items, models = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
dataset = np.fromfile(path, dtype=np.uint8).reshape(items, models).astype(int)
started = time.perf_counter()
fitted = girth.twopl_mml(dataset)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "discrimination": [float(x) for x in fitted["Discrimination"]],
                  "difficulty": [float(x) for x in fitted["Difficulty"]]}))
