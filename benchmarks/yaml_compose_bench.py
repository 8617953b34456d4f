"""Cost of scanning YAML configs: libyaml fast path vs PyYAML's pure-Python reader.

The config scanner composes YAML as PyYAML's pure-Python reader reads it (the reader OmegaConf,
Hydra and ``yaml.unsafe_load`` use) and takes libyaml's graph only where the two are known to
agree (no U+FEFF inside the text, nesting shallow enough for libyaml's C stack). This prints,
for a few generated configs, the CPU time of a whole ``scan_bytes`` (sniff + scan; the
composition is shared between them) and of each reader alone, so the price of the pure-Python
path is visible:

* ``hydra-small``: a typical 2 KB training config (libyaml path);
* ``hydra-large``: the same shape repeated to about 700 KB (libyaml path);
* ``crlf``: the small one with CRLF line breaks (libyaml path: CR is read alike);
* ``bom-inside``: the small one with one ``\\ufeff`` at a line start (both readers);
* ``deep``: the small one after a 1000-space indented line (pure-Python path only).

Run: ``.venv/bin/python benchmarks/yaml_compose_bench.py [--repeat 5]``. CPU seconds (process
time) are printed: on a shared machine wall time depends on the scheduler.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import yaml

from mltrust.scan import scan_bytes
from mltrust.scan.formats import _yaml_compose

SMALL = """defaults:
  - _self_
seed: 42
trainer:
  _target_: pytorch_lightning.Trainer
  max_epochs: 10
  accelerator: gpu
  devices: 1
  precision: 16-mixed
  gradient_clip_val: 1.0
model:
  _target_: torch.nn.Linear
  in_features: 768
  out_features: 2
optimizer:
  _target_: torch.optim.AdamW
  lr: 3.0e-4
  weight_decay: 0.01
  betas: [0.9, 0.999]
data:
  batch_size: 32
  num_workers: 4
  paths:
    train: data/train.jsonl
    valid: data/valid.jsonl
  augment: &aug {flip: true, crop: 224}
  eval_augment:
    <<: *aug
    flip: false
logging:
  project: demo
  tags: [baseline, "run 1", 'quoted']
  notes: |
    A block scalar with a few lines
    of free text in it.
"""


def cases() -> dict[str, str]:
    block = "".join("  " + line + "\n" if line else "\n" for line in SMALL.splitlines())
    large = "".join(
        f"run{i}:\n" + block.replace("&aug", f"&aug{i}").replace("*aug", f"*aug{i}")
        for i in range(800)
    )
    return {
        "hydra-small": SMALL,
        "hydra-large": large,
        "crlf": SMALL.replace("\n", "\r\n"),
        "bom-inside": SMALL.replace("\nseed:", "\n\ufeffseed:"),
        "deep": "pad:\n" + " " * 1000 + "x: 1\n" + SMALL,
    }


def cpu(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        _yaml_compose._cache = None  # measure a cold composition every time
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def read_with(loader: type, text: str) -> None:
    lo = loader(text)
    try:
        while lo.check_node():
            lo.get_node()
    except yaml.YAMLError:
        pass  # libyaml on U+FEFF at a line start: the divergence itself
    finally:
        lo.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    c_loader = getattr(yaml, "CSafeLoader", None)
    print(f"{'case':<12} {'bytes':>9} {'scan_bytes':>11} {'libyaml':>9} {'pure':>9} readers")
    for name, text in cases().items():
        data = text.encode()
        scan = cpu(functools.partial(scan_bytes, data, f"{name}.yaml"), args.repeat)
        fast = cpu(functools.partial(read_with, c_loader, text), args.repeat) if c_loader else 0.0
        slow = cpu(functools.partial(read_with, yaml.SafeLoader, text), args.repeat)
        _yaml_compose._cache = None
        readers = "+".join(v.reader for v in _yaml_compose.compose(text))
        print(
            f"{name:<12} {len(data):>9} {scan * 1e3:>9.1f}ms {fast * 1e3:>7.1f}ms "
            f"{slow * 1e3:>7.1f}ms {readers}"
        )


if __name__ == "__main__":
    main()
