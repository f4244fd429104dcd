"""Imports the modules named on the command line and prints, as JSON, where the time went.

Run by bench/real.sh with a bundle's own python (`-I -B`). Splits the wall time of the imports
into finding modules (`PathFinder.find_spec`), getting their code (`SourceLoader.get_code`:
reading and checking a pyc and unmarshalling it, or reading and compiling the source) and the
rest: executing the modules' bodies, loading extension modules and the import system's own
bookkeeping, which no bytecode can take away.
"""
import importlib
import importlib._bootstrap_external as external
import json
import sys
import time

spent = {"find_spec": 0.0, "get_code": 0.0}
get_code = external.SourceLoader.get_code
find_spec = external.PathFinder.find_spec.__func__
depth = [0]


def timed_get_code(self, name):
    start = time.perf_counter()
    try:
        return get_code(self, name)
    finally:
        spent["get_code"] += time.perf_counter() - start


def timed_find_spec(cls, *args, **kwargs):
    # Only the outermost call: a finder may call back into the path finder.
    if depth[0]:
        return find_spec(cls, *args, **kwargs)
    depth[0] += 1
    start = time.perf_counter()
    try:
        return find_spec(cls, *args, **kwargs)
    finally:
        spent["find_spec"] += time.perf_counter() - start
        depth[0] -= 1


external.SourceLoader.get_code = timed_get_code
external.PathFinder.find_spec = classmethod(timed_find_spec)
before = len(sys.modules)
start = time.perf_counter()
for name in sys.argv[1:]:
    importlib.import_module(name)
total = time.perf_counter() - start
spent["execute"] = total - spent["find_spec"] - spent["get_code"]
spent["total"] = total
spent["modules"] = len(sys.modules) - before
print(json.dumps(spent))
