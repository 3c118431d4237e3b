"""Anchor for bench/profiling.py, run with the anchors' own environment (`make bench-anchors`): ydata-profiling in
minimal mode on the same Parquet file, to a finished HTML report. Prints one JSON line: seconds and peak RSS."""
import json
import resource
import sys
import time

import pandas as pd
from ydata_profiling import ProfileReport

df = pd.read_parquet(sys.argv[1])
t0 = time.perf_counter()
html = ProfileReport(df, minimal=True, progress_bar=False).to_html()
seconds = time.perf_counter() - t0
print(json.dumps({"s": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "detail": len(html)}))
