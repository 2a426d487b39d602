"""Run Lambda events through the handler of a built package, in this fresh process, with nothing else importable.

    python -I -S tests/lambda_process.py PACKAGE_DIR EVENTS.json REPEAT

Prints one JSON object: the responses to the events, the peak RSS after the first round of
events and after REPEAT more rounds, and every imported module found outside the package and
the standard library (there must be none).
"""

from __future__ import annotations

import json
import resource
import sys
import sysconfig
import time
from pathlib import Path


def main() -> None:
    package, events_file, repeat = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, str(package))
    events = json.loads(events_file.read_text())
    start = time.perf_counter()
    from onnx_st.serverless import handler as lambda_handler
    from onnx_st.serverless.handler import handler

    loaded_at_import = bool(lambda_handler._runtime)
    responses = [handler(event, None) for event in events]
    first_s = time.perf_counter() - start
    peak_one = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(repeat):
        for event in events:
            handler(event, None)
    peak_many = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    outside = sorted(name for name, module in list(sys.modules.items())
                     if name != "__main__" and getattr(module, "__file__", None)
                     and not Path(module.__file__).resolve().is_relative_to(package)
                     and not Path(module.__file__).resolve().is_relative_to(stdlib))
    print(json.dumps({"responses": responses, "peak_kib_one": peak_one, "peak_kib_many": peak_many,
                      "outside": outside, "first_s": first_s,
                      "loaded_at_import": loaded_at_import}))


if __name__ == "__main__":
    main()
